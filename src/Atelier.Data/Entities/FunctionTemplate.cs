namespace Atelier.Data.Entities;

/// <summary>
/// A platform-defined function spec: engine, image (Kubernetes) or command (local), port, health path, resources,
/// instance concurrency and the JSON Schema of its instance parameters. Arguments and environment values may name
/// <c>{{parameter}}</c>, filled from a function's instance parameters.
/// </summary>
public sealed class FunctionTemplate
{
    public required string Id { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public required string Engine { get; set; }
    public string? Image { get; set; }
    public string? Command { get; set; }
    public string ArgsJson { get; set; } = "[]";
    public string EnvironmentJson { get; set; } = "{}";
    public int Port { get; set; }
    public string HealthPath { get; set; } = "/";
    public double Cpu { get; set; }
    public int MemoryMb { get; set; }
    public int Gpu { get; set; }
    public int InstanceConcurrency { get; set; } = 1;
    public int TimeoutSeconds { get; set; } = 300;
    public string ParametersSchemaJson { get; set; } = "{}";
    public bool BuiltIn { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
