namespace Atelier.Data.Entities;

/// <summary>One try of a webhook delivery: when, the HTTP status (null when no answer came), how long it took, what went wrong.</summary>
public sealed class WebhookAttempt : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string DeliveryId { get; set; }
    public int Number { get; set; }
    public DateTime At { get; set; }
    public int? Status { get; set; }
    public int LatencyMs { get; set; }
    public string? Error { get; set; }
}
