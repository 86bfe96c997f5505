using System.Text.Json;

namespace Atelier.Contracts.Workers;

/// <summary>
/// The worker protocol's routes, relative to the server's base address. The server maps these templates and the
/// worker fills them in, so a route changed on one side changes on the other.
/// </summary>
public static class WorkerRoutes
{
    public const string Register = "api/v1/worker/register";
    public const string Lease = "api/v1/worker/lease";
    public const string Heartbeat = "api/v1/worker/jobs/{jobId}/heartbeat";
    public const string Image = "api/v1/worker/jobs/{jobId}/images/{index}";
    public const string Complete = "api/v1/worker/jobs/{jobId}/complete";
    public const string Fail = "api/v1/worker/jobs/{jobId}/fail";

    /// <summary>A template with its job id (and image index) filled in.</summary>
    public static string For(string template, string jobId, int? index = null) =>
        template.Replace("{jobId}", Uri.EscapeDataString(jobId), StringComparison.Ordinal)
            .Replace("{index}", index?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "{index}", StringComparison.Ordinal);
}

/// <summary>Issues a worker key (platform admin); <c>name</c> is for people (which fleet it is for).</summary>
public sealed record IssueWorkerKeyRequest(string? Name);

/// <summary>A new worker key: its secret is shown this once.</summary>
public sealed record WorkerKeyDto(string Id, string Secret);

/// <summary>A worker key as the platform admin lists it (never its secret).</summary>
public sealed record WorkerKeyInfoDto(string Id, string? Name, string DisplayPrefix, DateTime CreatedAt, DateTime? LastUsedAt, DateTime? RevokedAt, int Workers);

/// <summary>A registered worker: its slots and the model each slot has loaded (<c>hot</c>).</summary>
public sealed record WorkerDto(string Id, string Engine, int Slots, IReadOnlyList<string?> Hot, DateTime RegisteredAt, DateTime LastSeenAt);

/// <summary>A worker announces itself: its id (unique per key), its engine and how many jobs it runs at once.</summary>
public sealed record RegisterWorkerRequest(string? WorkerId, string? Engine, int? Slots);

/// <summary>
/// One slot asks for a job, waiting up to <c>waitSeconds</c>. <c>hot</c> holds, per slot, the model version it has
/// loaded (or null); its length is the registered slot count.
/// </summary>
public sealed record LeaseRequest(string? WorkerId, int? Slot, IReadOnlyList<string?>? Hot, int? WaitSeconds);

/// <summary>The model a leased job runs on, as the registry knows it; the worker finds its own copy by SHA-256, else by name.</summary>
public sealed record LeasedModel(string VersionId, string ModelId, string Name, string VersionName, string? Sha256);

/// <summary>
/// A leased job: the attempt every later call names, the request (A1111's txt2img/img2img fields) and when the
/// lease ends unless a heartbeat renews it.
/// </summary>
public sealed record LeasedJob(string Id, int Attempt, string TenantId, string AgentId, string Kind, LeasedModel? Model, JsonElement Request, DateTime LeaseUntil);

/// <summary>Renews the lease of <c>attempt</c>, with the progress so far.</summary>
public sealed record HeartbeatRequest(int? Attempt, int? Step, int? Steps, double? Fraction);

/// <summary>The renewed lease, and whether the job's owner asked to cancel it (the worker then stops and fails it as <c>canceled</c>).</summary>
public sealed record HeartbeatDto(DateTime LeaseUntil, bool CancelRequested);

/// <summary>An uploaded image as the server stored it: its key is what the completion names.</summary>
public sealed record StoredImage(string Key, string Sha256, long Size, int Width, int Height);

/// <summary>Completes <c>attempt</c> with its result.</summary>
public sealed record CompleteJobRequest(int? Attempt, WorkerResult? Result);

/// <summary>A job's result: its images (each an uploaded key), A1111's <c>info</c> string and the request as the engine understood it.</summary>
public sealed record WorkerResult(IReadOnlyList<WorkerImage>? Images, string? Info, JsonElement? Parameters);

/// <summary>One image of a result; sizes and dimensions are taken from the stored object, not from the worker.</summary>
public sealed record WorkerImage(string Key, string Sha256, long Size, long Seed, string Infotext, int Width = 0, int Height = 0);

/// <summary>
/// Fails <c>attempt</c>. <c>errorCode</c> is a catalog code (an unknown one is recorded as
/// <c>b_agent_unknownexception</c>) or <c>canceled</c> (Errors.ErrCodes.Canceled) when the worker stopped on a cancel request.
/// </summary>
public sealed record FailJobRequest(int? Attempt, string? ErrorCode, string? ErrorMessage);
