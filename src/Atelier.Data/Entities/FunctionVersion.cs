namespace Atelier.Data.Entities;

/// <summary>An immutable snapshot of a function's configuration, numbered from 1 in publishing order.</summary>
public sealed class FunctionVersion : ITenantOwned
{
    public required string FunctionId { get; set; }
    public int Number { get; set; }
    public required string TenantId { get; set; }
    public required string ConfigJson { get; set; }
    public string? Description { get; set; }
    public DateTime CreatedAt { get; set; }
}
