using System.Text.Json;
using System.Text.Json.Serialization;

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

    /// <summary>Complete, then lease the slot's next job in the same call: 200 with it, or 204 when none came within the wait.</summary>
    public const string CompleteAndLease = "api/v1/worker/jobs/{jobId}/complete-and-lease";
    public const string Fail = "api/v1/worker/jobs/{jobId}/fail";

    /// <summary>One file of the leased job's model version, by SHA-256 (<c>?attempt=N</c>); answers HTTP Range requests.</summary>
    public const string File = "api/v1/worker/jobs/{jobId}/files/{sha256}";

    /// <summary>One input picture of a leased job (an init image, a mask, a workflow's picture), by SHA-256 (<c>?attempt=N</c>).</summary>
    public const string Input = "api/v1/worker/jobs/{jobId}/inputs/{sha256}";

    /// <summary>How a queued body names an input picture kept in the object store: this, then its SHA-256 in hex.</summary>
    public const string InputPrefix = "atelier-input:sha256:";

    /// <summary>The address of one input picture of a leased job, for the attempt that holds the lease.</summary>
    public static string InputOf(string jobId, string sha256, int attempt) =>
        For(Input, jobId).Replace("{sha256}", Uri.EscapeDataString(sha256), StringComparison.Ordinal)
        + "?attempt=" + attempt.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A template with its job id (and image index) filled in.</summary>
    public static string For(string template, string jobId, int? index = null) =>
        template.Replace("{jobId}", Uri.EscapeDataString(jobId), StringComparison.Ordinal)
            .Replace("{index}", index?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "{index}", StringComparison.Ordinal);

    /// <summary>The address of one model file of a leased job, for the attempt that holds the lease.</summary>
    public static string FileOf(string jobId, string sha256, int attempt) =>
        For(File, jobId).Replace("{sha256}", Uri.EscapeDataString(sha256), StringComparison.Ordinal)
        + "?attempt=" + attempt.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>What a job is (<c>LeasedJob.kind</c>): an A1111 txt2img or img2img body, or a whole ComfyUI workflow.</summary>
public static class JobKinds
{
    public const string Txt2Img = "txt2img";
    public const string Img2Img = "img2img";
    public const string ComfyWorkflow = "comfyui";
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

/// <summary>
/// The model a leased job runs on, as the registry knows it. The worker finds its engine's own copy by SHA-256 (of the
/// primary file), else fetches <c>files</c> through <see cref="WorkerRoutes.File"/> into its model cache, else goes by
/// name. <c>type</c> is the model's type (checkpoint, onnx, …); <c>key</c> is what the worker reports in its hot request
/// info once the slot has the model loaded (<c>sha256:&lt;hex&gt;</c> when the primary file's hash is known: the same
/// bytes in two tenants are one hot model). The last three are null from a server that predates model delivery.
/// </summary>
public sealed record LeasedModel(string VersionId, string ModelId, string Name, string VersionName, string? Sha256, string? Type = null,
    IReadOnlyList<LeasedFile>? Files = null, string? Key = null);

/// <summary>
/// One stored file of the leased model version: its path inside the version (an ONNX folder's files have folders, such
/// as <c>unet/model.onnx</c>; other types' are bare names), its SHA-256 and size, and whether it is the primary file.
/// </summary>
public sealed record LeasedFile(string Path, string Sha256, long Size, bool Primary);

/// <summary>What a running job is doing, as its heartbeats say (<see cref="HeartbeatRequest.Stage"/>).</summary>
public static class JobStages
{
    /// <summary>The worker is fetching the model's files into its cache (bytes done of total).</summary>
    public const string Downloading = "downloading";

    /// <summary>The model is in place; the engine is generating (steps, fraction).</summary>
    public const string Generating = "generating";
}

/// <summary>
/// A leased job: the attempt every later call names, the request (A1111's txt2img/img2img fields) and when the
/// lease ends unless a heartbeat renews it.
/// </summary>
/// <remarks><c>networks</c>: the tenant's LoRA model versions the prompt names (<c>&lt;lora:name&gt;</c>), with their files, fetched like the model's.
/// <c>inlineImageBytes</c>: the image bytes, over all of them, the completion may carry itself (<see cref="WorkerImage.Data"/>)
/// instead of uploading each first; absent (a server without it, or turned off): upload every image.</remarks>
public sealed record LeasedJob(string Id, int Attempt, string TenantId, string AgentId, string Kind, LeasedModel? Model, JsonElement Request, DateTime LeaseUntil,
    IReadOnlyList<LeasedModel>? Networks = null, long? InlineImageBytes = null);

/// <summary>
/// Renews the lease of <c>attempt</c>, with the progress so far: the engine's steps and fraction, and, while the worker
/// fetches the model, <c>stage</c> (<see cref="JobStages"/>) with the bytes done of the bytes to fetch.
/// </summary>
public sealed record HeartbeatRequest(int? Attempt, int? Step, int? Steps, double? Fraction, string? Stage = null, long? BytesDone = null, long? BytesTotal = null,
    string? Preview = null);

/// <summary>The renewed lease, and whether the job's owner asked to cancel it (the worker then stops and fails it as <c>canceled</c>).</summary>
public sealed record HeartbeatDto(DateTime LeaseUntil, bool CancelRequested);

/// <summary>An uploaded image as the server stored it: its key is what the completion names.</summary>
public sealed record StoredImage(string Key, string Sha256, long Size, int Width, int Height);

/// <summary>Completes <c>attempt</c> with its result.</summary>
public sealed record CompleteJobRequest(int? Attempt, WorkerResult? Result);

/// <summary>A completion and the lease of the slot's next job (<see cref="WorkerRoutes.CompleteAndLease"/>); <c>next</c> is a lease request.</summary>
public sealed record CompleteAndLeaseRequest(int? Attempt, WorkerResult? Result, LeaseRequest? Next);

/// <summary>A job's result: its images (each an uploaded key), A1111's <c>info</c> string and the request as the engine understood it.</summary>
public sealed record WorkerResult(IReadOnlyList<WorkerImage>? Images, string? Info, JsonElement? Parameters);

/// <summary>
/// One image of a result; sizes and dimensions are taken from the stored object, not from the worker. Either <c>key</c>
/// names the attempt's upload of it, or <c>data</c> carries its PNG bytes (base64, within the lease's
/// <c>inlineImageBytes</c>): the server stores it as the upload of the image's place in the list would have been,
/// and keeps only the key.
/// </summary>
public sealed record WorkerImage(string Key, string Sha256, long Size, long Seed, string Infotext, int Width = 0, int Height = 0,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] byte[]? Data = null);

/// <summary>
/// Fails <c>attempt</c>. <c>errorCode</c> is a catalog code (an unknown one is recorded as
/// <c>b_agent_unknownexception</c>) or <c>canceled</c> (Errors.ErrCodes.Canceled) when the worker stopped on a cancel request.
/// </summary>
public sealed record FailJobRequest(int? Attempt, string? ErrorCode, string? ErrorMessage);
