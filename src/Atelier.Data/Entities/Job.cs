namespace Atelier.Data.Entities;

/// <summary>A durable job: queued, leased by one worker attempt at a time, finished once.</summary>
public sealed class Job : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string AgentId { get; set; }
    /// <summary>The client's own id for the job, unique per <see cref="ClientScope"/>: a retried submit finds the first one.</summary>
    public string? ClientJobId { get; set; }
    /// <summary>Whose <see cref="ClientJobId"/> it is: the session id for a session, the token's app id for an API token (admin scope
    /// too), <c>*</c> for the platform admin. Idempotency keys are unique per scope, so no caller can squat another's.</summary>
    public string ClientScope { get; set; } = "*";
    /// <summary>SHA-256 of the request body, so a retry with another body under the same client id is told apart.</summary>
    public required string BodyHash { get; set; }
    public required string RequestJson { get; set; }
    /// <summary>
    /// The model the job needs loaded, for hot-model scheduling: <c>sha256:&lt;hex&gt;</c> of the version's primary file
    /// (the same bytes in two tenants are one hot model), else the model version id.
    /// </summary>
    public string? ModelKey { get; set; }
    /// <summary>
    /// What the worker needs to find the model in its engine (JSON: version id, name, title, type, SHA-256 of the primary
    /// file), and where the running attempt stands in fetching it (<c>Delivery</c>, from its heartbeats).
    /// </summary>
    public string? ModelJson { get; set; }
    /// <summary>queued, running, succeeded, failed, canceled.</summary>
    public required string State { get; set; }
    public int Priority { get; set; }
    /// <summary>The attempt number of the current or last lease; a completion must name it (a fencing token).</summary>
    public int Attempt { get; set; }
    public int MaxAttempts { get; set; } = 3;
    public string? LeaseOwner { get; set; }
    /// <summary>The worker key that holds the lease: heartbeat, images, complete and fail are fenced by it as well as by the attempt.</summary>
    public string? LeaseKeyId { get; set; }
    public DateTime? LeaseUntil { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public string? ErrorCode { get; set; }
    public string? ErrorMessage { get; set; }
    public string? ResultJson { get; set; }
    /// <summary>Set when a running job is asked to stop; the worker holding it interrupts the engine.</summary>
    public bool CancelRequested { get; set; }
    /// <summary>When the stop was asked for: a job still running a grace period later is aborted.</summary>
    public DateTime? CancelRequestedAt { get; set; }
    /// <summary>What made the job: <c>job</c> (the jobs API), <c>txt2img</c>, <c>img2img</c> (predict APIs).</summary>
    public string Kind { get; set; } = "job";
    /// <summary>The credential that submitted it (token or session id): A1111's progress and interrupt act on the caller's own.</summary>
    public string? CallerId { get; set; }
    public string? AppId { get; set; }
    /// <summary>Start-time fair queueing key: a tenant's jobs are spread behind other tenants' so a burst cannot starve them.</summary>
    public long FairKey { get; set; }
    public int ProgressStep { get; set; }
    public int ProgressSteps { get; set; }
    /// <summary>0 to 1 over the whole job (every image of the batch).</summary>
    public double Progress { get; set; }
    /// <summary>The step of the latest live preview (<see cref="JobPreview"/>); null while there is none.</summary>
    public int? PreviewStep { get; set; }
    /// <summary>After this the result (and its images) are gone; null while unfinished.</summary>
    public DateTime? ResultExpiresAt { get; set; }
    /// <summary>Where the job's webhooks go (the job's own URL, else its app's default); null: no webhooks.</summary>
    public string? WebhookUrl { get; set; }
    /// <summary>Image credits taken at submit (given back, once, when the job ends without success).</summary>
    public int CreditsCharged { get; set; }
    /// <summary>The entitlements the credits came from, comma-delimited on both sides.</summary>
    public string? CreditScopes { get; set; }
    /// <summary>The events that are sent, comma-delimited on both sides (<c>,started,completed,</c>) so one LIKE matches one.</summary>
    public string? WebhookEvents { get; set; }
}
