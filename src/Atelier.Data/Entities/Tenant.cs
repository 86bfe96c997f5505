using Atelier.Contracts.Identity;

namespace Atelier.Data.Entities;

public sealed class Tenant
{
    public required string Id { get; set; }
    public required string AccountUid { get; set; }
    public required string Name { get; set; }
    public TenantState State { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? InitializedAt { get; set; }
    public DateTime? ActivatedAt { get; set; }
}
