using System.Text.Json;

namespace Atelier.Contracts.Jobs;

/// <summary>
/// Submits a job. <c>jobId</c> is the client's own id (optional): submitting it again with the same body gives the
/// existing job back; with another body it is refused. <c>input</c> is the generation request (A1111's txt2img
/// fields; <c>init_images</c> makes it an img2img). <c>webhook</c> is where the job's events are posted (signed per
/// Standard Webhooks), <c>webhookEvents</c> which of started, completed, failed, canceled (default: all).
/// </summary>
public sealed record SubmitJobRequest(string? JobId, JsonElement? Input, int? Priority, string? Webhook = null, IReadOnlyList<string>? WebhookEvents = null);

/// <summary>
/// A job's progress: the engine's fraction and steps; while its worker fetches the model, <c>stage</c> is
/// <c>downloading</c> with the bytes done of <c>bytesTotal</c>, then <c>generating</c> (null when no model was fetched).
/// </summary>
public sealed record JobProgressDto(double Fraction, int Step, int Steps, string? Stage = null, long? BytesDone = null, long? BytesTotal = null,
    int? PreviewStep = null);

public sealed record JobModelDto(string VersionId, string Name, string Title);

public sealed record JobDto(string Id, string? ClientJobId, string AgentId, string Kind, string State, int Attempt, int MaxAttempts, int Priority,
    JobModelDto? Model, JobProgressDto Progress, DateTime CreatedAt, DateTime? StartedAt, DateTime? FinishedAt, string? ErrorCode,
    string? ErrorMessage, bool CancelRequested, DateTime? ResultExpiresAt, string? Webhook = null, IReadOnlyList<string>? WebhookEvents = null);

/// <summary>One image of a result: where to fetch it (<c>url</c>, with the caller's credential), its seed and infotext.</summary>
public sealed record JobImageDto(int Index, string Url, long Seed, string Infotext, string Sha256, long Size);

public sealed record JobResultDto(string Id, string State, IReadOnlyList<JobImageDto> Images, string? Info, string? ErrorCode, string? ErrorMessage);

/// <summary>What an async predict call answers: the task (a job of the caller's agent: see docs/agents.md) and where to follow it.</summary>
public sealed record TaskAcceptedDto(string TaskId, string State, string ProgressUrl, string ResultUrl, string EventsUrl);
