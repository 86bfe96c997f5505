namespace Atelier.Data.Entities;

/// <summary>A row that belongs to one tenant: filtered by tenant on every read, checked on every write.</summary>
public interface ITenantOwned
{
    string TenantId { get; set; }
}
