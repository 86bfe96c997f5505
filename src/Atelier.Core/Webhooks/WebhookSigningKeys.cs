using Atelier.Core.Common;
using Atelier.Data;

namespace Atelier.Core.Webhooks;

/// <summary>
/// An app's signing secrets, opened, for the relay: read and opened once, then kept for a few seconds
/// (like <see cref="ShortCache{T}"/>), so a busy app's messages do not each read its webhook row and open its secrets. A
/// rotation on this replica drops the app's entry at once (<see cref="Forget"/>, which also keeps a read that began
/// before it from being kept); another replica signs with the secrets it read for at most those seconds more, so a
/// receiver that stops accepting the old secret at once may refuse those messages (they go again on the retry
/// schedule). The previous secret's end is checked at each use, so it stops signing when its overlap ends.
/// </summary>
public sealed class WebhookSigningKeys(WebhookSecretBox box, TimeProvider clock)
{
    private readonly TtlCache<string, Keys> _keys = new(clock, TimeSpan.FromSeconds(5), 10_000, StringComparer.Ordinal);

    /// <summary>Bumped by every <see cref="Forget"/>: a read that began before a forget does not keep what it read.</summary>
    private long _forgets;

    private sealed record Keys(string Current, string? Previous, DateTime? PreviousValidUntil);

    /// <summary>The secrets kept for the app, as <see cref="SecretsAsync"/> answers them; null when none are kept (read them then).</summary>
    public IReadOnlyList<string>? Cached(string tenantId, string appId) => _keys.TryGet(tenantId + "/" + appId, out var keys) ? InForce(keys) : null;

    /// <summary>The secrets that sign the app's messages now, the current one first; null when the app is gone.</summary>
    public async Task<IReadOnlyList<string>?> SecretsAsync(AtelierDb db, string tenantId, string appId, CancellationToken ct)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var key = tenantId + "/" + appId;
        if (!_keys.TryGet(key, out var keys))
        {
            var forgets = Interlocked.Read(ref _forgets);
            var hook = await WebhookService.EnsureAsync(db, box, tenantId, appId, now, ct);
            if (hook is null)
            {
                return null;
            }

            keys = new Keys(await box.OpenAsync(hook.SecretCipher, ct),
                hook.PreviousSecretCipher is { } previous && hook.PreviousValidUntil > now ? await box.OpenAsync(previous, ct) : null,
                hook.PreviousValidUntil);
            if (Interlocked.Read(ref _forgets) == forgets)
            {
                _keys.Set(key, keys); // else a rotation may have committed after the read: this message signs with what it read, no later one
            }
        }

        return InForce(keys);
    }

    /// <summary>The current secret, and the previous one while its overlap lasts.</summary>
    private IReadOnlyList<string> InForce(Keys keys) =>
        keys.Previous is not null && keys.PreviousValidUntil > clock.GetUtcNow().UtcDateTime ? [keys.Current, keys.Previous] : [keys.Current];

    /// <summary>Drops what is kept for the app (its secret was rotated, or the app deleted).</summary>
    public void Forget(string tenantId, string appId)
    {
        Interlocked.Increment(ref _forgets);
        _keys.Remove(tenantId + "/" + appId);
    }
}
