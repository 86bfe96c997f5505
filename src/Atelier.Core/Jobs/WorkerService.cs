using System.Security.Cryptography;
using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Contracts.Workers;
using Atelier.Core.Common;
using Atelier.Core.Models;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Jobs;

/// <summary>The worker side of the queue: register, lease (long-poll), heartbeat, images, complete, fail; and the platform's worker keys.</summary>
public sealed partial class WorkerService(AtelierDb db, JobQueue queue, JobSignal signal, JobNotifier notifier, TimeProvider clock, RequestContext ctx,
    IOptions<JobsOptions> options, IObjectStore store, WorkerRegistry registry, ILogger<WorkerService> logger, Security.ContentSafety safety,
    WebhookSignal hooks, HotModelKeys hotKeys, CallerOptionsCache callerOptions, JobHandoff handoff)
{
    private JobsOptions O => options.Value;
    private TimeSpan RecheckEvery => TimeSpan.FromSeconds(Math.Max(1, O.LeaseRecheckSeconds));
    private TimeSpan Lease => TimeSpan.FromSeconds(O.LeaseSeconds);
    private TimeSpan Retention => TimeSpan.FromHours(O.ResultRetentionHours);
    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string KeyId => ctx.Caller?.CredentialId ?? throw new InvalidOperationException("No worker key.");

    public async Task<WorkerKeyDto> IssueKeyAsync(string? name, CancellationToken ct)
    {
        var secret = Secrets.Issue(Secrets.WorkerKeyPrefix);
        var key = new PlatformKey
        {
            Id = Ids.New("wk", clock), Scope = "worker", SecretHash = Secrets.Hash(secret), DisplayPrefix = Secrets.DisplayPrefix(secret),
            CreatedAt = Now, Name = Validate.Optional(name, "name", 200),
        };
        db.PlatformKeys.Add(key);
        Audit.Record(db, ctx, clock, "worker_key.issue", "worker_key", key.Id, null);
        await db.SaveChangesAsync(ct);
        return new WorkerKeyDto(key.Id, secret);
    }

    /// <summary>Every worker key, newest first, with when it was last used and how many worker ids it registered.</summary>
    public async Task<IReadOnlyList<WorkerKeyInfoDto>> ListKeysAsync(CancellationToken ct)
    {
        var keys = await db.PlatformKeys.AsNoTracking().Where(k => k.Scope == "worker").OrderByDescending(k => k.CreatedAt).ThenBy(k => k.Id).ToListAsync(ct);
        var counts = await db.Workers.AsNoTracking().GroupBy(w => w.KeyId).Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Key, g => g.Count, ct);
        return [.. keys.Select(k => new WorkerKeyInfoDto(k.Id, k.Name, k.DisplayPrefix, k.CreatedAt, k.LastUsedAt, k.RevokedAt, counts.GetValueOrDefault(k.Id)))];
    }

    /// <summary>
    /// Revokes a worker key: refused from the next request on, on every replica (worker keys are not cached), and its
    /// leases end now, so the rescuer gives its running jobs to other workers (or fails them when their attempts are used up).
    /// </summary>
    public async Task<WorkerKeyInfoDto> RevokeKeyAsync(string keyId, CancellationToken ct)
    {
        var key = await db.PlatformKeys.FirstOrDefaultAsync(k => k.Id == keyId && k.Scope == "worker", ct)
                  ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"keyId: {keyId} is not a worker key" }, status: 404);
        var now = Now;
        if (key.RevokedAt is null)
        {
            key.RevokedAt = now;
            Audit.Record(db, ctx, clock, "worker_key.revoke", "worker_key", key.Id, null);
            await db.SaveChangesAsync(ct);
        }

        var ended = await db.Jobs.IgnoreQueryFilters().Where(j => j.State == JobStates.Running && j.LeaseKeyId == key.Id)
            .ExecuteUpdateAsync(u => u.SetProperty(j => j.LeaseUntil, now.AddTicks(-1)), ct);
        if (ended > 0)
        {
            // Rescue now rather than at the rescuer's next pass: the jobs go back to the queue (or end) at once.
            LogLeasesEnded(logger, key.Id, ended);
            var (_, gone) = await queue.RescueExpiredAsync(TimeSpan.FromSeconds(O.CancelGraceSeconds), ct);
            signal.PulseAll();
            foreach (var id in gone)
            {
                await notifier.ChangedAsync(db, id, ct);
            }
        }

        registry.ForgetKey(key.Id);
        var workers = await db.Workers.CountAsync(w => w.KeyId == key.Id, ct);
        return new WorkerKeyInfoDto(key.Id, key.Name, key.DisplayPrefix, key.CreatedAt, key.LastUsedAt, key.RevokedAt, workers);
    }

    public async Task<IReadOnlyList<WorkerDto>> ListAsync(CancellationToken ct) =>
        [.. (await db.Workers.AsNoTracking().OrderBy(w => w.Id).ToListAsync(ct)).Select(ToDto)];

    /// <summary>Registers (or re-registers after a restart) a worker under the caller's key with its engine and slot count.</summary>
    public async Task<WorkerDto> RegisterAsync(string? workerId, string? engine, int? slots, CancellationToken ct)
    {
        var id = Validate.Identifier(workerId, "workerId");
        var n = Validate.Range(slots, "slots", 1, 64, 1);
        var eng = Validate.Name(engine, "engine", 200);
        var node = await db.Workers.FirstOrDefaultAsync(w => w.Id == id, ct);
        if (node is not null && node.KeyId != KeyId)
        {
            throw AtelierException.InvalidInput("workerId", $"{id} is registered under another worker key");
        }

        if (node is null)
        {
            if (await db.Workers.CountAsync(w => w.KeyId == KeyId, ct) >= O.MaxWorkersPerKey)
            {
                throw new AtelierException(ErrorCatalog.p_common_inputinvalid,
                    new Dictionary<string, string> { ["Input"] = $"workerId: this worker key has registered {O.MaxWorkersPerKey} worker ids, the most one key may" },
                    status: 409, errCode: ErrCodes.TooManyWorkers);
            }

            node = new WorkerNode { Id = id, KeyId = KeyId, Engine = eng, RegisteredAt = Now };
            db.Workers.Add(node);
        }

        node.Engine = eng;
        node.Slots = n;
        node.HotJson = JsonSerializer.Serialize(new string?[n]);
        node.LastSeenAt = Now;
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("workerId", $"{id} was registered at the same moment"), ct);
        registry.Forget(id);
        return ToDto(node);
    }

    /// <summary>
    /// Leases the next job for one slot of a registered worker, waiting up to <paramref name="waitSeconds"/> for one
    /// to be queued; null when none came. <paramref name="hot"/> is the worker's hot request info: one entry per slot,
    /// the model that slot has loaded (or null); its length must be the worker's slot count.
    /// </summary>
    public async Task<LeasedJob?> LeaseAsync(string? workerId, int? slot, IReadOnlyList<string?>? hot, int waitSeconds, CancellationToken ct) =>
        await LeaseAsync(await LeaseSlotAsync(workerId, slot, hot, ct), waitSeconds, ct);

    /// <summary>
    /// Completes a job (as <see cref="CompleteAsync"/>) and leases the slot's next one (as <see cref="LeaseAsync(string?, int?, IReadOnlyList{string?}?, int, CancellationToken)"/>)
    /// in one call, which saves the worker a request per job. The lease's fields are checked first: when they are
    /// refused, the job is not completed either. Null when no job came within the wait (the completion stands).
    /// </summary>
    public async Task<LeasedJob?> CompleteAndLeaseAsync(string jobId, int attempt, WorkerResult result, LeaseRequest next, CancellationToken ct)
    {
        var target = await LeaseSlotAsync(next.WorkerId, next.Slot, next.Hot, ct);
        await CompleteAsync(jobId, attempt, result, ct);
        // The completion woke whoever waits for the job (a sync txt2img) on this thread's own queue: let it answer
        // before this thread goes on to claim the slot's next job, a tenth of a millisecond for the worker, the job's
        // latency for its caller.
        await Task.Yield();
        return await LeaseAsync(target, next.WaitSeconds ?? 0, ct);
    }

    /// <summary>A registered worker's slot, checked, with the worker's hot request info.</summary>
    private sealed record LeaseSlot(WorkerNode Node, string WorkerId, int Slot, IReadOnlyList<string?> Hot);

    private async Task<LeaseSlot> LeaseSlotAsync(string? workerId, int? slot, IReadOnlyList<string?>? hot, CancellationToken ct)
    {
        var id = Validate.Identifier(workerId, "workerId");
        var node = await registry.GetAsync(db, id, ct);
        if (node is null || node.KeyId != KeyId)
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid,
                new Dictionary<string, string> { ["Input"] = $"workerId: {id} is not registered (POST /api/v1/worker/register first)" },
                status: 409, errCode: ErrCodes.NotRegistered);
        }

        var info = hot ?? [];
        if (info.Count != node.Slots)
        {
            throw new AtelierException(ErrorCatalog.b_agent_hotrequestinfosizenotmatch, errCode: ErrCodes.HotRequestInfo,
                errMessage: $"{info.Count} hot request infos for a worker registered with {node.Slots} slots");
        }

        var s = slot ?? 0;
        if (s < 0 || s >= node.Slots)
        {
            throw AtelierException.InvalidInput("slot", $"must be 0 to {node.Slots - 1}");
        }

        return new LeaseSlot(node, id, s, info);
    }

    private async Task<LeasedJob?> LeaseAsync(LeaseSlot target, int waitSeconds, CancellationToken ct)
    {
        var (node, id, s, info) = target;
        await WorkerRegistry.SeenAsync(db, node, info, Now, ct);
        var hotKey = await hotKeys.KeyOfAsync(db, info[s], ct);

        var wait = TimeSpan.FromSeconds(Math.Clamp(waitSeconds, 0, O.MaxLeaseWaitSeconds));
        var deadline = clock.GetUtcNow() + wait;
        var starvation = TimeSpan.FromSeconds(O.StarvationSeconds);
        var me = $"{id}/{s}";
        // A unit's key leases its agent's jobs only; a shared key, the jobs of agents that have no unit.
        var lane = ctx.Caller?.AgentId ?? JobQueue.SharedLane;
        using var waiting = registry.Wait(me, lane, hotKey);
        JobSignal.Wake? woken = null;
        while (true)
        {
            // Register before looking, so that a job queued in between is not missed. Look again every
            // LeaseRecheckSeconds whatever happens: a replica without notifications (SQLite) or a lost one delays a job
            // by that much at most. The wait ends at its deadline without another look (the worker asks again at once),
            // unless a wake ended it: then the slot looks once more, as the wake was meant for it.
            using (var waiter = signal.Register(lane, hotKey))
            {
                var job = await queue.ClaimAsync(me, Lease, hotKey, starvation, ct, registry.HeldByOthers(me, lane, hotKey), KeyId, lane);
                if (job is null && woken is not null)
                {
                    signal.Retry(woken);
                }

                if (job is not null)
                {
                    AtelierMeter.LeaseWait.Record(Math.Max(0, (Now - job.CreatedAt).TotalSeconds));
                    if (job.ModelKey is { } model && AtelierMeter.ModelLoads.Enabled && !await HotOnWorkerAsync(info, model, ct))
                    {
                        // None of the worker's slots has the job's model loaded: running it loads the model.
                        AtelierMeter.ModelLoads.Add(1, new KeyValuePair<string, object?>("engine", node.Engine));
                    }

                    // The caller's A1111 options (POST /sdapi/v1/options) go with its request, as A1111 applies its options when it generates.
                    using var request = JsonDocument.Parse(job.Kind is "txt2img" or "img2img"
                        ? await CallerOptionsService.WithCallerOptionsAsync(db, callerOptions, job.CallerId, job.RequestJson, ct)
                        : job.RequestJson);
                    var (leasedModel, networks) = await LeasedModelAsync(job, ct);
                    return new LeasedJob(job.Id, job.Attempt, job.TenantId, job.AgentId, job.Kind, leasedModel, request.RootElement.Clone(), job.LeaseUntil,
                        networks, O.InlineImageBytes > 0 ? O.InlineImageBytes : null);
                }

                var left = deadline - clock.GetUtcNow();
                if (left <= TimeSpan.Zero)
                {
                    return null;
                }

                using (registry.Park(me))
                {
                    woken = await waiter.WaitAsync(left < RecheckEvery ? left : RecheckEvery, ct);
                }
            }
        }
    }

    private async Task<bool> HotOnWorkerAsync(IReadOnlyList<string?> hot, string modelKey, CancellationToken ct)
    {
        foreach (var entry in hot)
        {
            if (entry is not null && await hotKeys.KeyOfAsync(db, entry, ct) == modelKey)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The leased job's model with what the worker needs to fetch it: the version's stored files and the model's type.
    /// Read at lease time, so files added to the version since the job was queued are there too.
    /// </summary>
    private async Task<(LeasedModel? Model, IReadOnlyList<LeasedModel>? Networks)> LeasedModelAsync(JobQueue.ClaimedJob job, CancellationToken ct)
    {
        if (ResolvedModel.FromJson(job.ModelJson) is not { } model)
        {
            return (null, null);
        }

        // A read per version (the model's, and each LoRA's its prompt names), a fixed statement kept prepared: EF's
        // query of them all at once cost about a millisecond on every lease (see docs/benchmarks.md, issue 18).
        var files = await StoredFilesAsync(job.TenantId, model.VersionId, ct);
        var networks = model.Networks is null ? null : new List<LeasedModel>(model.Networks.Count);
        foreach (var network in model.Networks ?? [])
        {
            networks!.Add(network.ToLeased(await StoredFilesAsync(job.TenantId, network.VersionId, ct), network.Type));
        }

        // Jobs queued before the type was recorded with the model: read it.
        var type = model.Type ?? await db.Models.IgnoreQueryFilters().AsNoTracking().Where(m => m.Id == model.ModelId).Select(m => m.Type).FirstOrDefaultAsync(ct);
        return (model.ToLeased(files, type), networks);
    }

    /// <summary>The stored files of one of the tenant's model versions (those with a hash), by name.</summary>
    private async Task<IReadOnlyList<LeasedFile>> StoredFilesAsync(string tenantId, string versionId, CancellationToken ct) =>
        await RawCommands.ReadAsync(db,
            """
            SELECT "AliasName", "Sha256", "Size", "IsPrimary" FROM model_files
            WHERE "VersionId" = {0} AND "TenantId" = {1} AND "State" = 'stored' AND "Sha256" IS NOT NULL ORDER BY "AliasName"
            """,
            [versionId, tenantId], r => new LeasedFile(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? 0 : r.GetInt64(2), r.GetBoolean(3)), ct);

    /// <summary>
    /// Renews the caller's lease with its progress. While the worker fetches the model it also says the stage and the
    /// bytes (kept with the job's model, <see cref="JobDelivery"/>, and shown by the jobs API).
    /// </summary>
    public async Task<HeartbeatDto> HeartbeatAsync(string jobId, int attempt, HeartbeatRequest beat, CancellationToken ct)
    {
        var (step, steps, fraction) = (beat.Step, beat.Steps, beat.Fraction);
        (int, int, double)? progress = step is null && fraction is null ? null
            : (Math.Max(0, step ?? 0), Math.Max(0, steps ?? 0), Math.Clamp(fraction ?? 0, 0, 1));
        JobDelivery? delivery = null;
        if (beat.Stage is not null)
        {
            if (beat.Stage is not (JobStages.Downloading or JobStages.Generating))
            {
                throw AtelierException.InvalidInput("stage", $"must be {JobStages.Downloading} or {JobStages.Generating}");
            }

            if (beat.BytesDone < 0 || beat.BytesTotal < 0 || beat.BytesDone > beat.BytesTotal)
            {
                throw AtelierException.InvalidInput("bytesDone", "must be between 0 and bytesTotal");
            }

            delivery = new JobDelivery(attempt, beat.Stage, beat.BytesDone, beat.BytesTotal);
        }

        var preview = beat.Preview is null ? null : PreviewPng(beat.Preview);
        if (!await queue.HeartbeatAsync(jobId, attempt, Lease, progress, ct, KeyId, delivery))
        {
            throw Stale(jobId, attempt);
        }

        if (preview is not null)
        {
            await queue.SavePreviewAsync(jobId, attempt, Math.Max(0, step ?? 0), preview, KeyId, ct);
        }

        var cancel = await db.Jobs.IgnoreQueryFilters().AnyAsync(j => j.Id == jobId && j.CancelRequested, ct);
        return new HeartbeatDto(Now + Lease, cancel);
    }

    /// <summary>The largest live preview a heartbeat may carry (decoded): a preview is a small picture of the latents.</summary>
    public const int MaxPreviewBytes = 256 * 1024;

    /// <summary>A heartbeat's preview: base64 of a PNG of at most <see cref="MaxPreviewBytes"/>; anything else is refused.</summary>
    private static byte[] PreviewPng(string base64)
    {
        if (base64.Length > ((MaxPreviewBytes + 2) / 3 * 4))
        {
            throw AtelierException.InvalidInput("preview", $"is larger than {MaxPreviewBytes} bytes");
        }

        var png = new byte[base64.Length * 3 / 4 + 3];
        if (!Convert.TryFromBase64String(base64, png, out var length) || length < 8
            || !png.AsSpan(0, 8).SequenceEqual((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        {
            throw AtelierException.InvalidInput("preview", "must be base64 of a PNG image");
        }

        return png[..length];
    }

    /// <summary>Stores one image of the caller's attempt in the object store, under the job's tenant.</summary>
    public async Task<StoredImage> PutImageAsync(string jobId, int attempt, int index, Stream body, long? length, CancellationToken ct)
    {
        if (index is < 0 or > 255)
        {
            throw AtelierException.InvalidInput("index", "must be 0 to 255");
        }

        var job = await HeldLeaseAsync(jobId, attempt, ct);
        if (length > O.MaxImageBytes)
        {
            throw AtelierException.InvalidInput("image", $"is larger than {O.MaxImageBytes} bytes");
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > O.MaxImageBytes)
            {
                throw AtelierException.InvalidInput("image", $"is larger than {O.MaxImageBytes} bytes");
            }

            buffer.Write(chunk, 0, read);
        }

        return await StoreImageAsync(jobId, attempt, job.TenantId, index, buffer.ToArray(), "image", ct);
    }

    /// <summary>
    /// Stores one PNG of the caller's attempt under its place (<paramref name="index"/>) in the object store, and offers
    /// it to a caller waiting here (<see cref="JobHandoff"/>). A full disk ends the job at once (see below).
    /// </summary>
    private async Task<StoredImage> StoreImageAsync(string jobId, int attempt, string tenantId, int index, byte[] bytes, string field, CancellationToken ct)
    {
        if (ImageHeaders.Read(bytes) is not { Format: ImageHeaders.Png } header)
        {
            throw AtelierException.InvalidInput(field, "must be a PNG");
        }

        var key = ImageKey(tenantId, jobId, attempt, index);
        try
        {
            using var content = new MemoryStream(bytes, writable: false);
            await store.PutAsync(key, content, bytes.Length, ct);
        }
        catch (IOException e) when (StorageSpace.IsDiskFull(e))
        {
            // The image cannot be kept: the job ends now, as a failure worth retrying later, so whoever waits for it
            // (a sync txt2img) is answered at once instead of when the worker gives up.
            if (await queue.FailAsync(jobId, attempt, JobStates.Failed, ErrorCatalog.s_common_lockfail.Code,
                    "the server's storage was full when the image was to be stored; try again later", Retention, ct))
            {
                await notifier.ChangedAsync(db, jobId, ct);
            }

            throw;
        }

        // Stored: a caller waiting for this job here may take the bytes from memory (JobHandoff).
        handoff.OfferImage(jobId, key, bytes);
        return new StoredImage(key, Convert.ToHexStringLower(SHA256.HashData(bytes)), bytes.Length, header.Width, header.Height);
    }

    /// <summary>A job's running attempt the caller's key holds (the heartbeat's fence), or a stale attempt (409).</summary>
    private async Task<HeldLease> HeldLeaseAsync(string jobId, int attempt, CancellationToken ct)
    {
        var held = await RawCommands.ReadAsync(db,
            """
            SELECT "TenantId", "ModelJson", "RequestJson" FROM jobs
            WHERE "Id" = {0} AND "Attempt" = {1} AND "State" = 'running' AND "LeaseKeyId" = {2}
            """,
            [jobId, attempt, KeyId], r => new HeldLease(r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetString(2)), ct);
        return held.Count == 1 ? held[0] : throw Stale(jobId, attempt);
    }

    private sealed record HeldLease(string TenantId, string? ModelJson, string RequestJson);

    public static string ImageKey(string tenantId, string jobId, int attempt, int index) => $"images/{tenantId}/{jobId}/{attempt}-{index}.png";

    /// <summary>
    /// One file of the model version of a job the caller holds the running lease of (the same fence as the heartbeat:
    /// the attempt, the state, the worker key), by its SHA-256, opened in the object store. Any other job, attempt or
    /// key is a stale attempt (409); a hash that is not one of the version's stored files is refused (404) before
    /// the store is touched.
    /// </summary>
    public async Task<(Stream Content, long Size)> OpenFileAsync(string jobId, int attempt, string? sha256, CancellationToken ct)
    {
        var sha = sha256?.ToLowerInvariant();
        if (sha is null || sha.Length != 64 || !sha.All(Uri.IsHexDigit))
        {
            throw AtelierException.InvalidInput("sha256", "must be 64 hex digits");
        }

        var job = await HeldLeaseAsync(jobId, attempt, ct);
        var model = ResolvedModel.FromJson(job.ModelJson);
        // The job's model version, or one of the LoRA versions resolved for it at submit: nothing else of the tenant's.
        var versions = model is null ? [] : new List<string> { model.VersionId }.Concat(model.Networks?.Select(n => n.VersionId) ?? []).ToList();
        var size = model is null ? null
            : await db.ModelFiles.IgnoreQueryFilters().AsNoTracking()
                .Where(f => versions.Contains(f.VersionId) && f.TenantId == job.TenantId && f.State == "stored" && f.Sha256 == sha)
                .Select(f => f.Size).FirstOrDefaultAsync(ct);
        if (size is null)
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid,
                new Dictionary<string, string> { ["Input"] = $"sha256: {sha} is not a stored file of the model version of job {jobId}" },
                status: 404, errCode: ErrCodes.NotAJobFile);
        }

        return (await store.OpenReadAsync(ObjectStores.BlobKey(sha), ct), size.Value);
    }

    /// <summary>
    /// One input picture (an init image, a mask, a workflow's picture) of a job the caller holds the running lease of
    /// (the heartbeat's fence), by its SHA-256, opened in the object store: only a picture the job's queued body names
    /// (any other → 404 <c>not_a_job_file</c>, before the store is touched).
    /// </summary>
    public async Task<(Stream Content, long Size)> OpenInputAsync(string jobId, int attempt, string? sha256, CancellationToken ct)
    {
        var sha = sha256?.ToLowerInvariant();
        if (sha is null || sha.Length != 64 || !sha.All(Uri.IsHexDigit))
        {
            throw AtelierException.InvalidInput("sha256", "must be 64 hex digits");
        }

        var job = await HeldLeaseAsync(jobId, attempt, ct);
        if (!JobInputs.References(job.RequestJson).Contains(sha))
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid,
                new Dictionary<string, string> { ["Input"] = $"sha256: {sha} is not an input picture of job {jobId}" },
                status: 404, errCode: ErrCodes.NotAJobFile);
        }

        var key = JobInputs.Key(job.TenantId, sha);
        var size = await store.SizeAsync(key, ct) ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid,
            new Dictionary<string, string> { ["Input"] = $"sha256: the input picture {sha} of job {jobId} is gone from the store" }, status: 404, errCode: ErrCodes.NotAJobFile);
        return (await store.OpenReadAsync(key, ct), size);
    }

    /// <summary>
    /// Completes the attempt and records its images in the generated-images library, in one transaction: a stale
    /// attempt changes nothing and records nothing.
    /// </summary>
    public async Task CompleteAsync(string jobId, int attempt, WorkerResult result, CancellationToken ct)
    {
        var keyId = KeyId;
        var job = await HotQueries.JobById(db, jobId, ct) ?? throw Stale(jobId, attempt);
        if (job.State != JobStates.Running || job.Attempt != attempt || job.LeaseKeyId != keyId)
        {
            throw Stale(jobId, attempt);
        }

        var images = await IssuedImagesAsync(job, attempt, result.Images ?? [], ct);
        if (await RefusedByModerationAsync(job, images, ct))
        {
            return;
        }

        var completed = result with { Images = images };
        var resultJson = JsonSerializer.Serialize(completed, AtelierJson.Options);
        var model = ResolvedModel.FromJson(job.ModelJson);
        var now = Now;
        if (images.Count == 0 && job.PreviewStep is null)
        {
            // Nothing else to write: the state change alone (with its message, in its own transaction where it needs one).
            if (!await queue.CompleteAsync(jobId, attempt, resultJson, Retention, ct, mayHaveWebhook: WebhookEvents.Wants(job.WebhookUrl, job.WebhookEvents, WebhookEvents.Completed), keyId))
            {
                throw Stale(jobId, attempt);
            }
        }
        else
        {
            await CompleteWithImagesAsync(job, attempt, images, resultJson, model, now, ct);
        }

        // Committed: a caller waiting for this job here may take the result from memory (JobHandoff).
        handoff.OfferResult(jobId, completed);
        if (job.WebhookUrl is not null)
        {
            hooks.Pulse();
        }

        LogCompleted(logger, jobId, attempt, KeyId);
        if (AtelierMeter.JobDuration.Enabled && job.StartedAt is { } started)
        {
            // The worker is in the registry's cache (its lease looked it up moments ago).
            var worker = job.LeaseOwner is { } owner ? await registry.GetAsync(db, owner.Split('/')[0], ct) : null;
            AtelierMeter.JobDuration.Record(Math.Max(0, (now - started).TotalSeconds), new KeyValuePair<string, object?>("engine", worker?.Engine ?? "unknown"));
        }

        await notifier.ChangedAsync(db, jobId, ct);
    }

    /// <summary>
    /// A completion with images (or a live preview to drop), all or nothing: on SQLite one write on the file's writer; on
    /// PostgreSQL the state change's own statement, each image and the preview's removal a step of it that writes only
    /// when the state changed; elsewhere (or in a caller's transaction) one transaction in this process's write turn,
    /// the images first and the state change last, so the tenant's counter row is held for that statement and the commit.
    /// </summary>
    private async Task CompleteWithImagesAsync(Job job, int attempt, IReadOnlyList<WorkerImage> images, string resultJson, ResolvedModel? model, DateTime now, CancellationToken ct)
    {
        var session = job.CallerId?.StartsWith("ses_", StringComparison.Ordinal) == true ? job.CallerId : null;
        var mayHaveWebhook = WebhookEvents.Wants(job.WebhookUrl, job.WebhookEvents, WebhookEvents.Completed);
        var keyId = KeyId; // read here: the write runs on the writer's thread, outside this request's context
        if (db.WriterNow is { } writes)
        {
            // SQLite: the images, the preview's removal and the state change in one write on the file's writer; a stale
            // attempt throws inside it, which takes the write back (no image is recorded).
            // The caller wakes the relay after it (CompleteAsync).
            await writes.RunAsync(w =>
            {
                for (var i = 0; i < images.Count; i++)
                {
                    w.Execute(InsertImage, ImageRow(job, images[i], i, session, model, now));
                }

                if (job.PreviewStep is not null)
                {
                    w.Execute(DeletePreview, [job.Id]);
                }

                var done = queue.Complete(w, job.Id, attempt, resultJson, Retention, mayHaveWebhook, keyId);
                return done.Changed ? done : throw Stale(job.Id, attempt);
            }, ct);
            return;
        }

        if (queue.ChainsWrites && db.Database.CurrentTransaction is null)
        {
            // PostgreSQL: the images and the preview's removal go in the completion's own statement, each written only
            // when the state changed (a stale attempt records nothing): one round trip and one commit, where a
            // transaction took one per image, one for the state change and one for the commit.
            var steps = new List<(string, object?[])>(images.Count + 1);
            for (var i = 0; i < images.Count; i++)
            {
                steps.Add((InsertImageWhenDone, ImageRow(job, images[i], i, session, model, now)));
            }

            if (job.PreviewStep is not null)
            {
                steps.Add((DeletePreview + " AND " + JobQueue.StateChanged, [job.Id]));
            }

            if (!await queue.CompleteAsync(job.Id, attempt, resultJson, Retention, ct, mayHaveWebhook, keyId, steps))
            {
                throw Stale(job.Id, attempt);
            }

            return;
        }

        using (await queue.WriteTurnAsync(ct))
        await using (var tx = await db.Database.BeginTransactionAsync(ct))
        {
            for (var i = 0; i < images.Count; i++)
            {
                // One raw insert per image (EF's SaveChanges of the row cost several times the statement, in the write turn).
                await RawCommands.ExecuteAsync(db, InsertImage, ImageRow(job, images[i], i, session, model, now), ct);
            }

            if (job.PreviewStep is not null)
            {
                // The live preview was for watching the job run: the images are here now.
                await db.JobPreviews.IgnoreQueryFilters().Where(p => p.JobId == job.Id).ExecuteDeleteAsync(ct);
            }

            if (!await queue.CompleteAsync(job.Id, attempt, resultJson, Retention, ct, mayHaveWebhook, keyId))
            {
                throw Stale(job.Id, attempt);
            }

            await tx.CommitAsync(ct);
        }
    }

    private object?[] ImageRow(Job job, WorkerImage im, int index, string? session, ResolvedModel? model, DateTime now) =>
    [
        Ids.New("img", clock), job.TenantId, job.Id, index, job.AppId, session, model?.VersionId, im.Seed,
        im.Infotext.Length > 8192 ? im.Infotext[..8192] : im.Infotext, im.Width, im.Height, im.Size, im.Sha256, im.Key, now,
    ];

    private const string ImageColumns = """
        INSERT INTO generated_images ("Id", "TenantId", "JobId", "Index", "AppId", "SessionId", "ModelVersionId", "Seed", "Infotext", "Width", "Height",
                                      "Size", "Sha256", "StorageKey", "CreatedAt")
        """;

    private const string InsertImage = ImageColumns + """

        VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}, {11}, {12}, {13}, {14})
        """;

    /// <summary>The image's insert as a step of the completion's statement (PostgreSQL): nothing when the state did not change.</summary>
    private const string InsertImageWhenDone = ImageColumns + """

        SELECT {0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}, {11}, {12}, {13}, {14}
        """ + " WHERE " + JobQueue.StateChanged;

    private const string DeletePreview = """DELETE FROM job_previews WHERE "JobId" = {0}""";

    /// <summary>
    /// The images of a completion, each an exact key this server issued for this job and attempt (in the image upload)
    /// and stored: a worker names which of its uploads make the result, never where they are. Sizes are the stored ones.
    /// An image the completion carries itself (<see cref="WorkerImage.Data"/>) is checked first, with all the others,
    /// and then stored under its place in the list, as its upload would have been.
    /// </summary>
    private async Task<IReadOnlyList<WorkerImage>> IssuedImagesAsync(Job job, int attempt, IReadOnlyList<WorkerImage> images, CancellationToken ct)
    {
        var prefix = ImageKey(job.TenantId, job.Id, attempt, 0)[..^"0.png".Length];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var carried = new byte[images.Count][];
        for (var i = 0; i < images.Count; i++)
        {
            var image = images[i] ?? throw AtelierException.InvalidInput("result.images", "an image may not be null");
            if (image.Data is { } bytes)
            {
                // Base64 that is not is refused by the body's binding (p_common_needcorrectinputformat), before this.
                if (i > 255)
                {
                    throw AtelierException.InvalidInput("result.images", "at most 256 images");
                }

                if (bytes.Length > O.MaxImageBytes)
                {
                    throw AtelierException.InvalidInput("result.images", $"image {i} is larger than {O.MaxImageBytes} bytes");
                }

                if (ImageHeaders.Read(bytes) is not { Format: ImageHeaders.Png })
                {
                    throw AtelierException.InvalidInput("result.images", $"data of image {i} must be a PNG");
                }

                carried[i] = bytes;
                if (!seen.Add(ImageKey(job.TenantId, job.Id, attempt, i)))
                {
                    throw AtelierException.InvalidInput("result.images", "each key must be one this attempt's image upload answered, once");
                }

                continue;
            }

            var key = image.Key;
            var issued = key is not null && key.StartsWith(prefix, StringComparison.Ordinal) && key.EndsWith(".png", StringComparison.Ordinal)
                         && int.TryParse(key.AsSpan(prefix.Length, key.Length - prefix.Length - ".png".Length), System.Globalization.NumberStyles.None,
                             System.Globalization.CultureInfo.InvariantCulture, out var index)
                         && index is >= 0 and <= 255 && key == ImageKey(job.TenantId, job.Id, attempt, index);
            if (!issued || !seen.Add(key!))
            {
                throw AtelierException.InvalidInput("result.images", "each key must be one this attempt's image upload answered, once");
            }
        }

        var carriedBytes = carried.Sum(b => (long)(b?.Length ?? 0));
        if (carriedBytes > O.InlineImageBytes)
        {
            throw AtelierException.InvalidInput("result.images",
                $"the images carried in the completion are {carriedBytes} bytes, and this server takes at most {O.InlineImageBytes} bytes so: upload them");
        }

        var checkedImages = new List<WorkerImage>(images.Count);
        for (var i = 0; i < images.Count; i++)
        {
            var image = images[i];
            if (carried[i] is { } bytes)
            {
                var stored = await StoreImageAsync(job.Id, attempt, job.TenantId, i, bytes, "result.images", ct);
                checkedImages.Add(image with { Key = stored.Key, Sha256 = stored.Sha256, Size = stored.Size, Width = stored.Width, Height = stored.Height, Data = null });
                continue;
            }

            var size = await store.SizeAsync(image.Key, ct)
                       ?? throw AtelierException.InvalidInput("result.images", $"{image.Key} was not uploaded");
            checkedImages.Add(image with { Size = size });
        }

        return checkedImages;
    }

    /// <summary>
    /// The images, checked by the tenant's moderation endpoint when it has one: flagged (or the checker failing) fails
    /// the job with <c>b_agent_contentnotsafe</c> and deletes the images, so nothing refused is ever served.
    /// </summary>
    private async Task<bool> RefusedByModerationAsync(Job job, IReadOnlyList<WorkerImage> images, CancellationToken ct)
    {
        if (images.Count == 0 || await safety.ModerationUrlAsync(job.TenantId, ct) is not { } url)
        {
            return false;
        }

        var bytes = new List<byte[]>();
        foreach (var image in images)
        {
            bytes.Add(await store.ReadAllBytesAsync(image.Key, ct));
        }

        try
        {
            using var request = JsonDocument.Parse(job.RequestJson);
            var prompt = request.RootElement.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()! : "";
            await safety.CheckImagesAsync(url, prompt, bytes, ct);
            return false;
        }
        catch (AtelierException refused) when (refused.Code == ErrorCatalog.b_agent_contentnotsafe)
        {
            foreach (var image in images)
            {
                await store.DeleteAsync(image.Key, ct);
            }

            if (await queue.FailAsync(job.Id, job.Attempt, JobStates.Failed, refused.Code.Code, $"{refused.ErrCode}: {refused.ErrMessage}", Retention, ct))
            {
                await notifier.ChangedAsync(db, job.Id, ct);
            }

            return true;
        }
    }

    /// <summary>
    /// Ends the attempt as failed with a catalog code (an unknown one becomes <c>b_agent_unknownexception</c>), or as
    /// canceled when the worker stopped because the job was canceled (<paramref name="errorCode"/> <c>canceled</c>).
    /// </summary>
    public async Task FailAsync(string jobId, int attempt, string? errorCode, string? errorMessage, CancellationToken ct)
    {
        var message = Validate.Optional(errorMessage, "errorMessage", 4000) ?? "";
        var canceled = errorCode == ErrCodes.Canceled && await db.Jobs.IgnoreQueryFilters().AnyAsync(j => j.Id == jobId && j.CancelRequested, ct);
        var code = canceled ? ErrCodes.Canceled
            : errorCode is not null && ErrorCatalog.All.Any(c => c.Code == errorCode) ? errorCode : ErrorCatalog.b_agent_unknownexception.Code;
        if (!await queue.FailAsync(jobId, attempt, canceled ? JobStates.Canceled : JobStates.Failed, code, message, Retention, ct, KeyId))
        {
            throw Stale(jobId, attempt);
        }

        await db.JobPreviews.IgnoreQueryFilters().Where(p => p.JobId == jobId).ExecuteDeleteAsync(ct);

        await notifier.ChangedAsync(db, jobId, ct);
    }

    /// <summary>A late answer from an attempt that is no longer the job's (its lease expired and another took it, or the job ended).</summary>
    private static AtelierException Stale(string jobId, int attempt) =>
        new(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"attempt: {attempt} is not the current lease of job {jobId}" },
            status: 409, errCode: ErrCodes.StaleAttempt);

    [LoggerMessage(4021, LogLevel.Warning, "Worker key {KeyId} revoked: the leases of its {Count} running jobs ended")]
    private static partial void LogLeasesEnded(ILogger logger, string keyId, int count);

    [LoggerMessage(4020, LogLevel.Information, "Job {JobId} completed by attempt {Attempt} (worker key {KeyId})")]
    private static partial void LogCompleted(ILogger logger, string jobId, int attempt, string keyId);

    private static WorkerDto ToDto(WorkerNode w) =>
        new(w.Id, w.Engine, w.Slots, JsonSerializer.Deserialize<string?[]>(w.HotJson) ?? [], w.RegisteredAt, w.LastSeenAt);
}
