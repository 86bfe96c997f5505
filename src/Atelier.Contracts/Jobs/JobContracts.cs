using System.Text.Json;

namespace Atelier.Contracts.Jobs;

/// <summary>
/// Submits a job. <c>jobId</c> is the client's own id (optional): submitting it again with the same body gives the
/// existing job back; with another body it is refused. <c>input</c> is the generation request (A1111's txt2img fields).
/// </summary>
public sealed record SubmitJobRequest(string? JobId, JsonElement? Input, int? Priority);

public sealed record JobDto(string Id, string? ClientJobId, string AgentId, string State, int Attempt, int MaxAttempts, int Priority,
    DateTime CreatedAt, DateTime? StartedAt, DateTime? FinishedAt, string? ErrorCode, string? ErrorMessage, bool CancelRequested);

public sealed record JobResultDto(string Id, string State, JsonElement? Result);

public sealed record AgentDto(string Id, string Name, DateTime CreatedAt);
