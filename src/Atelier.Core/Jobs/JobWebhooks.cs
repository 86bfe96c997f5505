using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Jobs;

/// <summary>An app's default webhook as submits read it (cached per replica; changing it forgets the app's entry).</summary>
public sealed record AppWebhookDefault(string? Url, string? Events);

/// <summary>Which webhook a job being submitted gets: its own, its app's default, or none.</summary>
public sealed class JobWebhooks(AtelierDb db, RequestContext ctx, IWebhookPolicy policy, ShortCache<AppWebhookDefault> defaults)
{
    private Caller Caller => ctx.Caller ?? throw new InvalidOperationException("No caller.");

    /// <summary>
    /// The webhook of a job being submitted: its own URL and events when it names one (a token's job only: an end user's
    /// session cannot point the platform at a URL), else its app's default, else none.
    /// </summary>
    public async Task<(string Url, string Events)?> ForJobAsync(WebhookRequest? request, CancellationToken ct)
    {
        if (request is { Url: { Length: > 0 } url })
        {
            if (Caller.Kind != CallerKind.Token || Caller.AppId is null)
            {
                throw AtelierException.InvalidInput(request.UrlField, "only an app's token may give a job its own webhook (a session's jobs use the app's)");
            }

            return (policy.CheckUrl(url, request.UrlField), WebhookEvents.Normalize(request.Events, request.EventsField));
        }

        if (request is { Events.Count: > 0 })
        {
            throw AtelierException.InvalidInput(request.EventsField, $"needs {request.UrlField}");
        }

        if (Caller.AppId is not { } appId)
        {
            return null;
        }

        var known = await defaults.GetOrAddAsync(appId, async () =>
            await db.AppWebhooks.AsNoTracking().Where(w => w.AppId == appId).Select(w => new AppWebhookDefault(w.Url, w.Events)).FirstOrDefaultAsync(ct)
            ?? new AppWebhookDefault(null, null));
        return known.Url is null ? null : (known.Url, known.Events ?? WebhookEvents.Normalize(null, "events"));
    }
}
