using Atelier.Contracts.Errors;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Webhooks;

/// <summary>Ends messages that will not be sent: <c>failed</c> with <c>s_webhook_invokefail</c> and <paramref name="reason"/> (they stay in the log).</summary>
public static class WebhookEnd
{
    public const string AppDeleted = "the app was deleted";

    public static Task<int> FailAsync(IQueryable<Data.Entities.WebhookDelivery> messages, string reason, DateTime now, CancellationToken ct) =>
        messages.ExecuteUpdateAsync(u => u.SetProperty(d => d.State, WebhookRelay.FailedState).SetProperty(d => d.LockedUntil, (DateTime?)null)
            .SetProperty(d => d.FinishedAt, now).SetProperty(d => d.ErrorCode, ErrorCatalog.s_webhook_invokefail.Code).SetProperty(d => d.LastError, reason), ct);
}
