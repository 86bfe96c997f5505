namespace Atelier.Data.Entities;

/// <summary>
/// One webhook message (the transactional outbox): written in the transaction that changes the job's state, then sent
/// by the relay until a 2xx, a permanent refusal or the end of the retry schedule. Its id is the <c>webhook-id</c>.
/// </summary>
public sealed class WebhookDelivery : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string AppId { get; set; }
    public required string JobId { get; set; }
    /// <summary>started, completed, failed, canceled.</summary>
    public required string Event { get; set; }
    /// <summary>The job's attempt when the event happened.</summary>
    public int JobAttempt { get; set; }
    public required string Url { get; set; }
    /// <summary>pending, delivered, failed.</summary>
    public required string State { get; set; }
    public int Tries { get; set; }
    /// <summary>Attempts allowed in all (the schedule's length; a replay allows one more).</summary>
    public int MaxTries { get; set; }
    public DateTime NextAttemptAt { get; set; }
    /// <summary>A relay holds the message until then (so two replicas never send it at once; a crashed one's hold lapses).</summary>
    public DateTime? LockedUntil { get; set; }
    /// <summary>The exact body sent, fixed at the first attempt so every retry signs the same bytes.</summary>
    public string? Payload { get; set; }
    public int? LastStatus { get; set; }
    public string? LastError { get; set; }
    /// <summary><c>s_webhook_invokefail</c> once the message is given up.</summary>
    public string? ErrorCode { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
}
