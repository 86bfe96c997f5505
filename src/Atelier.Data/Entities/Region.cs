namespace Atelier.Data.Entities;

/// <summary>A place functions and units run: its name, the runtime backend that serves it and, for Kubernetes, its kube config.</summary>
public sealed class Region
{
    public required string Name { get; set; }
    public required string Backend { get; set; }
    public string? KubeConfigId { get; set; }
    public string Namespace { get; set; } = "atelier";
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
