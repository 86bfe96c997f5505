using System.Security.Cryptography;
using System.Text;
using Atelier.Contracts.Errors;
using Atelier.Core.Security;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Webhooks;

/// <summary>
/// Encrypts the apps' signing secrets at rest (AES-GCM, a random nonce each time) with the webhook key of the master
/// key (<see cref="Security.MasterKeys"/>, never stored in the database), in <see cref="SecretSeal"/>'s format: a
/// secret sealed before a rotation still opens while its key is listed.
/// </summary>
public sealed class WebhookSecretBox(Security.MasterKeys keys)
{
    public Task<byte[]> SealAsync(string secret, CancellationToken ct) => Task.FromResult(Seal(secret));

    public Task<string> OpenAsync(byte[] sealedBytes, CancellationToken ct) =>
        Task.FromResult(TryOpen(sealedBytes, out var secret) ? secret : throw Unreadable());

    public byte[] Seal(string secret) => SecretSeal.Seal(keys, Security.KeyPurpose.WebhookSecrets, secret);

    /// <summary>True when sealed under the current key (nothing to re-seal).</summary>
    public bool IsCurrent(byte[] sealedBytes) => SecretSeal.IsCurrent(keys, sealedBytes);

    /// <summary>Opens a secret sealed under the current key or a previous one in its grace period; false for any other.</summary>
    public bool TryOpen(byte[] sealedBytes, out string secret) => SecretSeal.TryOpen(keys, Security.KeyPurpose.WebhookSecrets, sealedBytes, out secret);

    private static AtelierException Unreadable() =>
        new(ErrorCatalog.s_common_globalexception, errCode: ErrCodes.SecretKeyUnavailable,
            errMessage: "the app's webhook signing secret was sealed with a master key this server does not have (Atelier:Security); " +
                        "restore that key (or list it in Atelier:Security:PreviousKeys), or rotate the secret");

    /// <summary>
    /// At start: every stored secret not sealed under the current key is opened (with a previous key, or one of the
    /// keys before master keys: <c>Atelier:Webhooks:SecretKey</c>, else the old derivation from the first admin key)
    /// and sealed again under the current key, so a rotation or an upgrade leaves nothing behind under an old key.
    /// Returns how many were re-sealed and how many could not be opened (those stay; reading them is an error).
    /// </summary>
    public async Task<(int Resealed, int Unreadable)> ResealAllAsync(AtelierDb db, string? legacyConfiguredKey, CancellationToken ct)
    {
        int resealed = 0, unreadable = 0;
        byte[][]? legacy = null;
        string? after = null;
        while (true)
        {
            var q = db.AppWebhooks.IgnoreQueryFilters().AsNoTracking().OrderBy(w => w.AppId).AsQueryable();
            q = after is null ? q : q.Where(w => string.Compare(w.AppId, after) > 0);
            var batch = await q.Take(500).ToListAsync(ct);
            if (batch.Count == 0)
            {
                return (resealed, unreadable);
            }

            after = batch[^1].AppId;
            foreach (var row in batch)
            {
                foreach (var previous in new[] { false, true })
                {
                    var cipher = previous ? row.PreviousSecretCipher : row.SecretCipher;
                    if (cipher is null || IsCurrent(cipher))
                    {
                        continue;
                    }

                    legacy ??= await LegacyKeysAsync(db, legacyConfiguredKey, ct);
                    if (!TryOpen(cipher, out var secret) && !TryOpenLegacy(cipher, legacy, out secret))
                    {
                        unreadable++;
                        continue;
                    }

                    // Conditional on the old value: a rotation made meanwhile (on another replica) wins.
                    var again = Seal(secret);
                    var one = db.AppWebhooks.IgnoreQueryFilters().Where(w => w.AppId == row.AppId && w.TenantId == row.TenantId);
                    resealed += previous
                        ? await one.Where(w => w.PreviousSecretCipher == cipher).ExecuteUpdateAsync(u => u.SetProperty(w => w.PreviousSecretCipher, again), ct)
                        : await one.Where(w => w.SecretCipher == cipher).ExecuteUpdateAsync(u => u.SetProperty(w => w.SecretCipher, again), ct);
                }
            }
        }
    }

    private static async Task<byte[][]> LegacyKeysAsync(AtelierDb db, string? configured, CancellationToken ct)
    {
        var keys = new List<byte[]>();
        if (configured is { Length: > 0 } && Convert.FromBase64String(configured) is { Length: 32 } bytes)
        {
            keys.Add(bytes);
        }

        var root = await db.PlatformKeys.AsNoTracking().Where(k => k.Scope == "admin").OrderBy(k => k.CreatedAt).Select(k => k.SecretHash).FirstOrDefaultAsync(ct);
        if (root is not null)
        {
            keys.Add(HKDF.DeriveKey(HashAlgorithmName.SHA256, root, 32, info: "atelier webhook secrets v1"u8.ToArray()));
        }

        return [.. keys];
    }

    /// <summary>The format before master keys: <c>nonce (12) | tag (16) | ciphertext</c>.</summary>
    private static bool TryOpenLegacy(byte[] sealedBytes, byte[][] keys, out string secret)
    {
        secret = "";
        if (sealedBytes.Length < 28)
        {
            return false;
        }

        foreach (var key in keys)
        {
            using var aes = new AesGcm(key, 16);
            var plain = new byte[sealedBytes.Length - 28];
            try
            {
                aes.Decrypt(sealedBytes.AsSpan(0, 12), sealedBytes.AsSpan(28), sealedBytes.AsSpan(12, 16), plain);
                secret = Encoding.UTF8.GetString(plain);
                return true;
            }
            catch (CryptographicException)
            {
                // not this key
            }
        }

        return false;
    }
}
