namespace Atelier.Data.Entities;

/// <summary>One mutating admin call: who (operator), with which credential, did what to which resource.</summary>
public sealed class AuditEntry
{
    public required string Id { get; set; }
    /// <summary>Null for platform-level changes (accounts, tenants).</summary>
    public string? TenantId { get; set; }
    public required string OperatorId { get; set; }
    public required string Action { get; set; }
    public required string ResourceType { get; set; }
    public required string ResourceId { get; set; }
    public required string CredentialId { get; set; }
    /// <summary>Our request id (the one in the response envelope).</summary>
    public required string RequestId { get; set; }
    /// <summary>The request id the client sent (<c>X-Request-Id</c>), kept beside ours, never instead of it.</summary>
    public string? ClientRequestId { get; set; }
    public DateTime At { get; set; }
}
