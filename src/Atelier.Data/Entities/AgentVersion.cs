namespace Atelier.Data.Entities;

/// <summary>
/// What an agent's workers run: the image (Kubernetes), the engine and worker arguments (both backends), the environment,
/// and the scale template its units follow. Immutable once made: a change is a new version.
/// </summary>
public sealed class AgentVersion : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string AgentId { get; set; }
    public required string VersionName { get; set; }
    public required string Image { get; set; }
    public required string Engine { get; set; }
    /// <summary>JSON array of extra <c>atelier worker</c> arguments.</summary>
    public string ArgsJson { get; set; } = "[]";
    /// <summary>JSON object of environment variables.</summary>
    public string EnvJson { get; set; } = "{}";
    public required string ScaleTemplateId { get; set; }
    public string? Description { get; set; }
    public DateTime CreatedAt { get; set; }
}
