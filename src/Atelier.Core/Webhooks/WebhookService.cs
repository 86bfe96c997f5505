using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Identity;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Core.Jobs;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Webhooks;

/// <summary>
/// Webhooks as the API sees them: a job's own URL and events (checked at submit), an app's default URL, events and
/// signing secret (rotated with an overlap), and the delivery log (every message, every attempt) with replay.
/// </summary>
public sealed class WebhookService(AtelierDb db, RequestContext ctx, TimeProvider clock, IOptions<WebhookOptions> options, WebhookSecretBox box,
    WebhookSignal signal, ShortCache<AppWebhookDefault> defaults, IWebhookPolicy policy, WebhookSigningKeys signingKeys)
{
    private Caller Caller => ctx.Caller ?? throw new InvalidOperationException("No caller.");
    private DateTime Now => clock.GetUtcNow().UtcDateTime;

    public async Task<AppWebhookDto> GetAppAsync(string appId, CancellationToken ct) => await ToDtoAsync(await EnsureAsync(appId, ct), ct);

    /// <summary>Sets (or with no URL removes) the app's default webhook; its jobs that name none use it.</summary>
    public async Task<AppWebhookDto> PutAppAsync(string appId, PutAppWebhookRequest request, CancellationToken ct)
    {
        var url = request.Url is { Length: > 0 } given ? policy.CheckUrl(given, "url") : null;
        var events = WebhookEvents.Normalize(request.Events, "events");
        var row = await EnsureAsync(appId, ct);
        row.Url = url;
        row.Events = events;
        row.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "app.webhook.update", "app", appId, ctx.TenantId);
        await db.SaveChangesAsync(ct);
        defaults.Remove(appId);
        return await ToDtoAsync(row, ct);
    }

    /// <summary>A new signing secret; the current one is signed with too until the overlap ends (0: retired at once).</summary>
    public async Task<AppWebhookDto> RotateAsync(string appId, RotateWebhookSecretRequest? request, CancellationToken ct)
    {
        var overlap = Validate.Range(request?.OverlapSeconds, "overlapSeconds", 0, options.Value.MaxRotationOverlapSeconds, 86400);
        var row = await EnsureAsync(appId, ct);
        // A secret this server cannot open (sealed under a lost key) is not kept: rotating is how such an app recovers.
        var keep = overlap > 0 && box.TryOpen(row.SecretCipher, out _);
        row.PreviousSecretCipher = keep ? row.SecretCipher : null;
        row.PreviousValidUntil = keep ? Now.AddSeconds(overlap) : null;
        row.SecretCipher = await box.SealAsync(WebhookSigning.NewSecret(), ct);
        row.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "app.webhook.rotate_secret", "app", appId, ctx.TenantId);
        await db.SaveChangesAsync(ct);
        signingKeys.Forget(row.TenantId, appId); // this replica's relay signs with the new secret from the next message
        return await ToDtoAsync(row, ct);
    }

    /// <summary>The app's webhook row, made with a fresh secret the first time (tracked, in the caller's tenant).</summary>
    private async Task<AppWebhook> EnsureAsync(string appId, CancellationToken ct)
    {
        if (!await db.Apps.AnyAsync(a => a.Id == appId, ct))
        {
            throw AtelierException.With(ErrorCatalog.b_user_appnotfound, "App", appId);
        }

        return await EnsureAsync(db, box, ctx.TenantId!, appId, Now, ct) ?? throw AtelierException.With(ErrorCatalog.b_user_appnotfound, "App", appId);
    }

    /// <summary>
    /// The app's webhook row, created with a new secret if it has none (a concurrent creation wins and is read back);
    /// null when the app no longer exists.
    /// </summary>
    public static async Task<AppWebhook?> EnsureAsync(AtelierDb db, WebhookSecretBox box, string tenantId, string appId, DateTime now, CancellationToken ct)
    {
        var row = await db.AppWebhooks.IgnoreQueryFilters().FirstOrDefaultAsync(w => w.AppId == appId && w.TenantId == tenantId, ct);
        if (row is not null)
        {
            return row;
        }

        if (!await db.Apps.IgnoreQueryFilters().AnyAsync(a => a.Id == appId && a.TenantId == tenantId, ct))
        {
            return null;
        }

        row = new AppWebhook { AppId = appId, TenantId = tenantId, SecretCipher = await box.SealAsync(WebhookSigning.NewSecret(), ct), CreatedAt = now, UpdatedAt = now };
        db.AppWebhooks.Add(row);
        try
        {
            await db.SaveChangesAsync(ct);
            return row;
        }
        catch (DbUpdateException e) when (DbErrors.IsUniqueViolation(e))
        {
            db.Entry(row).State = EntityState.Detached;
            return await db.AppWebhooks.IgnoreQueryFilters().FirstAsync(w => w.AppId == appId && w.TenantId == tenantId, ct);
        }
    }

    private async Task<AppWebhookDto> ToDtoAsync(AppWebhook row, CancellationToken ct)
    {
        var live = row.PreviousSecretCipher is not null && row.PreviousValidUntil > Now;
        return new AppWebhookDto(row.AppId, row.Url, row.Url is null ? [] : WebhookEvents.Parse(row.Events), await box.OpenAsync(row.SecretCipher, ct),
            live ? await box.OpenAsync(row.PreviousSecretCipher!, ct) : null, live ? row.PreviousValidUntil : null, row.UpdatedAt);
    }

    /// <summary>Webhook messages of the tenant (an app-scoped token sees its own app's), newest first.</summary>
    public async Task<Page<WebhookDeliveryDto>> ListAsync(string? jobId, string? state, string? appId, PageRequest page, CancellationToken ct)
    {
        var q = Visible();
        if (jobId is not null)
        {
            q = q.Where(d => d.JobId == jobId);
        }

        if (state is not null)
        {
            if (state is not (WebhookRelay.Pending or WebhookRelay.Delivered or WebhookRelay.FailedState))
            {
                throw AtelierException.InvalidInput("state", $"must be {WebhookRelay.Pending}, {WebhookRelay.Delivered} or {WebhookRelay.FailedState}");
            }

            q = q.Where(d => d.State == state);
        }

        if (appId is not null)
        {
            q = q.Where(d => d.AppId == appId);
        }

        return await q.OrderByDescending(d => d.CreatedAt).ThenByDescending(d => d.Id).ToPageAsync(page, d => ToDto(d, null), ct);
    }

    public async Task<WebhookDeliveryDto> GetAsync(string deliveryId, CancellationToken ct)
    {
        var d = await FindAsync(deliveryId, ct);
        var attempts = await db.WebhookAttempts.AsNoTracking().Where(a => a.DeliveryId == d.Id).OrderBy(a => a.Number)
            .Select(a => new WebhookAttemptDto(a.Number, a.At, a.Status, a.LatencyMs, a.Error)).ToListAsync(ct);
        return ToDto(d, attempts);
    }

    /// <summary>
    /// Sends a message again now, with the same <c>webhook-id</c> and body (the receiver dedupes on the id): a finished
    /// one gets one more attempt; a pending one is moved to now.
    /// </summary>
    public async Task<WebhookDeliveryDto> ReplayAsync(string deliveryId, CancellationToken ct)
    {
        var d = await FindAsync(deliveryId, ct);
        var now = Now;
        var maxTries = d.State == WebhookRelay.Pending ? d.MaxTries : d.Tries + 1;
        await db.WebhookDeliveries.Where(x => x.Id == d.Id).ExecuteUpdateAsync(u => u.SetProperty(x => x.State, WebhookRelay.Pending)
            .SetProperty(x => x.NextAttemptAt, now).SetProperty(x => x.MaxTries, maxTries).SetProperty(x => x.ErrorCode, (string?)null)
            .SetProperty(x => x.FinishedAt, (DateTime?)null), ct);
        // The answer is the delivery as this replay queued it: read before the relay is woken, which may deliver it at once.
        var queued = await GetAsync(d.Id, ct);
        signal.Pulse();
        return queued;
    }

    private IQueryable<WebhookDelivery> Visible()
    {
        var q = db.WebhookDeliveries.AsNoTracking();
        if (!Caller.Has(TokenScope.Admin))
        {
            var own = Caller.AppId;
            q = q.Where(d => d.AppId == own);
        }

        return q;
    }

    private async Task<WebhookDelivery> FindAsync(string deliveryId, CancellationToken ct) =>
        await Visible().FirstOrDefaultAsync(d => d.Id == deliveryId, ct)
        ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"deliveryId: {deliveryId} does not exist" }, status: 404);

    private static WebhookDeliveryDto ToDto(WebhookDelivery d, IReadOnlyList<WebhookAttemptDto>? attempts) =>
        new(d.Id, d.JobId, d.AppId, d.Event, d.JobAttempt, d.Url, d.State, d.Tries, d.MaxTries, d.NextAttemptAt, d.LastStatus, d.LastError, d.ErrorCode,
            d.CreatedAt, d.FinishedAt, attempts);
}

/// <summary>An app's default webhook as a submit reads it.</summary>
