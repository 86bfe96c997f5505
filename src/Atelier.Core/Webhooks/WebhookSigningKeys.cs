using Atelier.Core.Common;
using Atelier.Data;

namespace Atelier.Core.Webhooks;

/// <summary>
/// An app's signing secrets, opened, for the relay: read and opened once, then kept for a few seconds
/// (<see cref="ShortCache{T}"/>), so a busy app's messages do not each read its webhook row and open its secrets. A
/// rotation on this replica drops the app's entry at once (<see cref="Forget"/>); another replica signs with the
/// secrets it read for at most those seconds more, which a rotation's overlap covers. The previous secret's end is
/// checked at each use, so it stops signing when its overlap ends, whatever the cache holds.
/// </summary>
public sealed class WebhookSigningKeys(WebhookSecretBox box, TimeProvider clock)
{
    private readonly TtlCache<string, Keys> _keys = new(clock, TimeSpan.FromSeconds(5), 10_000, StringComparer.Ordinal);

    private sealed record Keys(string Current, string? Previous, DateTime? PreviousValidUntil);

    /// <summary>The secrets that sign the app's messages now, the current one first; null when the app is gone.</summary>
    public async Task<IReadOnlyList<string>?> SecretsAsync(AtelierDb db, string tenantId, string appId, CancellationToken ct)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var key = tenantId + "/" + appId;
        if (!_keys.TryGet(key, out var keys))
        {
            var hook = await WebhookService.EnsureAsync(db, box, tenantId, appId, now, ct);
            if (hook is null)
            {
                return null;
            }

            keys = new Keys(await box.OpenAsync(hook.SecretCipher, ct),
                hook.PreviousSecretCipher is { } previous && hook.PreviousValidUntil > now ? await box.OpenAsync(previous, ct) : null,
                hook.PreviousValidUntil);
            _keys.Set(key, keys);
        }

        return keys.Previous is not null && keys.PreviousValidUntil > now ? [keys.Current, keys.Previous] : [keys.Current];
    }

    /// <summary>Drops what is kept for the app (its secret was rotated, or the app deleted).</summary>
    public void Forget(string tenantId, string appId) => _keys.Remove(tenantId + "/" + appId);
}
