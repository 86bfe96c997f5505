namespace Atelier.Data.Entities;

/// <summary>A tenant's named group of functions (the <c>{service}</c> of <c>/fn/{service}/{function}</c>).</summary>
public sealed class FunctionService : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public DateTime CreatedAt { get; set; }
}
