namespace Atelier.Data.Entities;

public sealed class ModelVersion : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string ModelId { get; set; }
    public required string Name { get; set; }
    /// <summary>Role ids that may use this version, '\n'-separated; empty means every role.</summary>
    public string AvailableRoleIds { get; set; } = "";
    public DateTime CreatedAt { get; set; }
}
