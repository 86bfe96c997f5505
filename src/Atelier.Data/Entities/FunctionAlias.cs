namespace Atelier.Data.Entities;

/// <summary>A name for a version, optionally sending <see cref="AdditionalWeight"/> (0..1) of its traffic to a second version.</summary>
public sealed class FunctionAlias : ITenantOwned
{
    public required string FunctionId { get; set; }
    public required string Name { get; set; }
    public required string TenantId { get; set; }
    public int Version { get; set; }
    public int? AdditionalVersion { get; set; }
    public double AdditionalWeight { get; set; }
    public string? Description { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
