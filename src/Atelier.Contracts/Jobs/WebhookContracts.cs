namespace Atelier.Contracts.Jobs;

/// <summary>
/// An app's webhook settings: the default URL and events for its jobs, and its signing secret (<c>whsec_…</c>, base64
/// after the prefix); during a rotation the previous secret, still signed with until <c>previousValidUntil</c>.
/// </summary>
public sealed record AppWebhookDto(string AppId, string? Url, IReadOnlyList<string> Events, string Secret, string? PreviousSecret,
    DateTime? PreviousValidUntil, DateTime UpdatedAt);

/// <summary>Sets an app's default webhook: a null or empty <c>url</c> removes it; <c>events</c> defaults to every event.</summary>
public sealed record PutAppWebhookRequest(string? Url, IReadOnlyList<string>? Events);

/// <summary>Rotates an app's signing secret; the old one stays valid for <c>overlapSeconds</c> (default a day, 0 to 7 days).</summary>
public sealed record RotateWebhookSecretRequest(int? OverlapSeconds);

/// <summary>One webhook message and where it stands; <c>attempts</c> on a single get.</summary>
public sealed record WebhookDeliveryDto(string Id, string JobId, string AppId, string Event, int JobAttempt, string Url, string State, int Tries,
    int MaxTries, DateTime NextAttemptAt, int? LastStatus, string? LastError, string? ErrorCode, DateTime CreatedAt, DateTime? FinishedAt,
    IReadOnlyList<WebhookAttemptDto>? Attempts);

public sealed record WebhookAttemptDto(int Number, DateTime At, int? Status, int LatencyMs, string? Error);

/// <summary>A webhook's body (Standard Webhooks' shape): the event type, when it happened, and the job.</summary>
public sealed record WebhookPayload(string Type, DateTime Timestamp, WebhookJobData Data);

/// <summary>The job as it stood when the message was first sent, the attempt the event belongs to, and the result of a completed job.</summary>
public sealed record WebhookJobData(JobDto Job, int Attempt, JobResultDto? Result);
