using Atelier.Contracts.Identity;

namespace Atelier.Data.Entities;

/// <summary>A row that belongs to one tenant: filtered by tenant on every read, checked on every write.</summary>
public interface ITenantOwned
{
    string TenantId { get; set; }
}

public sealed class Account
{
    public required string Uid { get; set; }
    public required string Name { get; set; }
    public DateTime CreatedAt { get; set; }
}

public sealed class Tenant
{
    public required string Id { get; set; }
    public required string AccountUid { get; set; }
    public required string Name { get; set; }
    public TenantState State { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? InitializedAt { get; set; }
    public DateTime? ActivatedAt { get; set; }
}

public sealed class TenantConfig : ITenantOwned
{
    public required string TenantId { get; set; }
    public string? DisplayName { get; set; }
    public string? DefaultRole { get; set; }
    public int MaxConcurrentJobs { get; set; }
    public int ImageRetentionDays { get; set; }
    public int DefaultSessionSeconds { get; set; }
    /// <summary>The global function settings, a JSON document validated against the published schema.</summary>
    public string FunctionSettingsJson { get; set; } = "{}";
    public DateTime UpdatedAt { get; set; }
    public DateTime FunctionSettingsUpdatedAt { get; set; }
}

public sealed class App : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}

public sealed class Role : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public DateTime CreatedAt { get; set; }
}

public sealed class Operator : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public string? Email { get; set; }
    public DateTime CreatedAt { get; set; }
}

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

public sealed class ApiToken : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string AppId { get; set; }
    public required string Name { get; set; }
    /// <summary>SHA-256 of the whole secret; the secret itself is never stored.</summary>
    public required byte[] SecretHash { get; set; }
    /// <summary>The first characters of the secret, enough to recognise it in a list.</summary>
    public required string DisplayPrefix { get; set; }
    public TokenScopes Scopes { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? ExpiresAt { get; set; }
    public bool Disabled { get; set; }
    public DateTime? RevokedAt { get; set; }
    public DateTime? LastUsedAt { get; set; }
    /// <summary>Seconds of every ended session of this token, added exactly once per session when it ends.</summary>
    public long TotalEndedSessionSeconds { get; set; }
    /// <summary>When set, no new session opens once the total reaches it.</summary>
    public long? SessionSecondsCap { get; set; }
    /// <summary>The token's default checkpoint (a model version), used when a request names none.</summary>
    public string? CheckpointVersionId { get; set; }
}

[Flags]
public enum TokenScopes
{
    None = 0,
    Admin = 1,
    App = 2,
}

/// <summary>A platform admin key (the installer's credential), stored hashed like tokens.</summary>
public sealed class PlatformKey
{
    public required string Id { get; set; }
    /// <summary>admin (the installer's key) or worker (a worker process: lease, heartbeat, complete, nothing else).</summary>
    public string Scope { get; set; } = "admin";
    public required byte[] SecretHash { get; set; }
    public required string DisplayPrefix { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? RevokedAt { get; set; }
    /// <summary>A name the operator chose (worker keys), to tell keys apart in the list.</summary>
    public string? Name { get; set; }
    /// <summary>When the key was last used, written at most once a minute.</summary>
    public DateTime? LastUsedAt { get; set; }
}

/// <summary>A model of a tenant's library (checkpoint, LoRA, embedding, VAE, ControlNet, upscaler, ONNX pipeline).</summary>
public sealed class Model : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public required string Type { get; set; }
    public string? Description { get; set; }
    public string? SourceUrl { get; set; }
    /// <summary>Tag names, '\n'-separated, each from the tag dictionary.</summary>
    public string Tags { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}

/// <summary>A tag of the dictionary: the platform's (<see cref="TenantId"/> null) or one tenant's.</summary>
public sealed class Tag
{
    public required string Id { get; set; }
    public string? TenantId { get; set; }
    public required string Name { get; set; }
    public DateTime CreatedAt { get; set; }
}

public sealed class ModelVersion : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string ModelId { get; set; }
    public required string Name { get; set; }
    /// <summary>Role ids that may use this version, '\n'-separated; empty means every role.</summary>
    public string AvailableRoleIds { get; set; } = "";
    public DateTime CreatedAt { get; set; }
}

/// <summary>A file of a model version: bytes in the object store (by SHA-256), or on their way there.</summary>
public sealed class ModelFile : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string ModelId { get; set; }
    public required string VersionId { get; set; }
    public required string AliasName { get; set; }
    public bool IsPrimary { get; set; }
    /// <summary>upload, url or hash.</summary>
    public required string Source { get; set; }
    /// <summary>stored, queued, downloading or failed.</summary>
    public required string State { get; set; }
    public string? Sha256 { get; set; }
    public long? Size { get; set; }
    public string? Format { get; set; }
    public string? SourceUrl { get; set; }
    public long DownloadedBytes { get; set; }
    public long? TotalBytes { get; set; }
    public long BytesPerSecond { get; set; }
    public int Attempts { get; set; }
    public string? ErrorCode { get; set; }
    public string? ErrorMessage { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}

/// <summary>An upload a client asked for: the bytes go to the returned URL, then become a stored blob.</summary>
public sealed class Upload : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Type { get; set; }
    public required string FileName { get; set; }
    public long DeclaredSize { get; set; }
    public string? DeclaredSha256 { get; set; }
    public required byte[] SecretHash { get; set; }
    /// <summary>pending, stored or failed.</summary>
    public required string State { get; set; }
    public string? Sha256 { get; set; }
    public string? Error { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime ExpiresAt { get; set; }
}

/// <summary>Bytes stored once by content: their hashes and what their content says they are.</summary>
public sealed class StoredBlob
{
    public required string Sha256 { get; set; }
    public long Size { get; set; }
    /// <summary>safetensors, onnx, pickle, json, text or unknown (from the content, not the name).</summary>
    public required string Format { get; set; }
    /// <summary>checkpoint, lora, embedding, vae, controlnet, or unknown (from safetensors tensor names and metadata).</summary>
    public required string DetectedKind { get; set; }
    /// <summary>AUTOMATIC1111's AutoV2: the first 10 hex digits of the SHA-256 of the whole file.</summary>
    public required string AutoV2 { get; set; }
    /// <summary>AutoV3 (the LoRA short hash): 12 hex digits of the SHA-256 of a safetensors file's data after its header.</summary>
    public string? AutoV3 { get; set; }
    public string? MetadataJson { get; set; }
    public DateTime CreatedAt { get; set; }
}

/// <summary>Who may add a blob by hash: a tenant that stored it, or everyone (<c>*</c>) for the platform's public files.</summary>
public sealed class BlobGrant
{
    public required string Sha256 { get; set; }
    public required string Owner { get; set; }
}

/// <summary>A time-limited session of one end user, opened with an API token.</summary>
public sealed class Session : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string AppId { get; set; }
    public required string TokenId { get; set; }
    public required string EndUserId { get; set; }
    public required string RoleId { get; set; }
    public required string Mode { get; set; }
    public string? ResourceConfigId { get; set; }
    /// <summary>SHA-256 of the end user's credential; the credential itself is never stored.</summary>
    public required byte[] CredentialHash { get; set; }
    public required string CredentialPrefix { get; set; }
    public required string State { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime ExpiredAt { get; set; }
    public DateTime? EndedAt { get; set; }
    public string? EndReason { get; set; }
    public long? DurationSeconds { get; set; }
    /// <summary>Why the session could not be ended (set by the sweeper, which then skips it and reports it).</summary>
    public string? EndError { get; set; }
    /// <summary>Bumped by every change, so end, refresh and the sweeper never act on a stale read.</summary>
    public long Version { get; set; }
}

/// <summary>A dedicated resource spec a session can ask for: engine, instance type, model, instance count.</summary>
public sealed class ResourceConfig : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public required string Engine { get; set; }
    public required string InstanceType { get; set; }
    public string? ModelId { get; set; }
    public int InstanceCount { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}

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
    /// <summary>The model the job needs loaded, for hot-model scheduling: the model version id when the registry resolved it.</summary>
    public string? ModelKey { get; set; }
    /// <summary>What the worker needs to find the model in its engine (JSON: version id, name, title, SHA-256 of the primary file).</summary>
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

/// <summary>
/// Limits on a tenant's jobs (<see cref="Scope"/> <c>*</c>) or one app's (an app id), checked before a job is queued:
/// jobs queued or running at once, jobs per period, and an image-credit balance (one credit per image). Null: no limit.
/// </summary>
public sealed class Entitlement : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Scope { get; set; }
    public int? MaxConcurrentJobs { get; set; }
    public int? MaxJobsPerPeriod { get; set; }
    public int PeriodSeconds { get; set; } = 86400;
    public long? Credits { get; set; }
    public DateTime UpdatedAt { get; set; }
}

/// <summary>A tenant's content safety rules: words and patterns refused in prompts, and an optional moderation endpoint.</summary>
public sealed class SafetyRules : ITenantOwned
{
    public required string TenantId { get; set; }
    /// <summary>JSON array of words.</summary>
    public string WordsJson { get; set; } = "[]";
    /// <summary>JSON array of regular expressions.</summary>
    public string PatternsJson { get; set; } = "[]";
    public string? ModerationUrl { get; set; }
    public DateTime UpdatedAt { get; set; }
}

/// <summary>An image a job produced: the generated-images library.</summary>
public sealed class GeneratedImage : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string JobId { get; set; }
    public int Index { get; set; }
    public string? AppId { get; set; }
    /// <summary>The session that asked for it, when an end user did.</summary>
    public string? SessionId { get; set; }
    public string? ModelVersionId { get; set; }
    public long Seed { get; set; }
    public string Infotext { get; set; } = "";
    public int Width { get; set; }
    public int Height { get; set; }
    public long Size { get; set; }
    public required string Sha256 { get; set; }
    public required string StorageKey { get; set; }
    public DateTime CreatedAt { get; set; }
    /// <summary>Set when deleting its stored bytes failed: the record stays so nothing is orphaned.</summary>
    public string? DeleteError { get; set; }
}

/// <summary>A registered worker: its slots and the model each slot has loaded (its hot request info).</summary>
public sealed class WorkerNode
{
    public required string Id { get; set; }
    public required string KeyId { get; set; }
    public required string Engine { get; set; }
    public int Slots { get; set; }
    /// <summary>JSON array, one entry per slot: the model key it has loaded, or null.</summary>
    public string HotJson { get; set; } = "[]";
    public DateTime RegisteredAt { get; set; }
    public DateTime LastSeenAt { get; set; }
}

/// <summary>An agent of a tenant: what jobs are submitted to. Each tenant gets a "default" agent at init.</summary>
public sealed class Agent : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public DateTime CreatedAt { get; set; }
}

/// <summary>
/// An app's webhook settings: its default URL and events (used by jobs that name none) and its signing secret, stored
/// encrypted. During a rotation the previous secret stays valid (and is signed with too) until <see cref="PreviousValidUntil"/>.
/// </summary>
public sealed class AppWebhook : ITenantOwned
{
    public required string AppId { get; set; }
    public required string TenantId { get; set; }
    public string? Url { get; set; }
    public string? Events { get; set; }
    public required byte[] SecretCipher { get; set; }
    public byte[]? PreviousSecretCipher { get; set; }
    public DateTime? PreviousValidUntil { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}

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
