namespace Atelier.Data.Entities;

/// <summary>A tag of the dictionary: the platform's (<see cref="TenantId"/> null) or one tenant's.</summary>
public sealed class Tag
{
    public required string Id { get; set; }
    public string? TenantId { get; set; }
    public required string Name { get; set; }
    public DateTime CreatedAt { get; set; }
}
