using System.Security.Cryptography;
using System.Text;

namespace Atelier.Core.Security;

/// <summary>
/// Secrets at rest in the database, sealed with AES-GCM (a random nonce each time) under one purpose's key of the
/// master key. A sealed secret is <c>"AK" 1 | key id (4) | nonce (12) | tag (16) | ciphertext</c>; the header is
/// authenticated, and a secret sealed before a rotation still opens while its master key is listed.
/// </summary>
public static class SecretSeal
{
    private static readonly byte[] Magic = [(byte)'A', (byte)'K', 1];
    private const int Header = 3 + 4 + 12 + 16;

    public static byte[] Seal(MasterKeys keys, KeyPurpose purpose, string secret)
    {
        using var aes = new AesGcm(keys.Current(purpose), 16);
        var plain = Encoding.UTF8.GetBytes(secret);
        var sealedBytes = new byte[Header + plain.Length];
        Magic.CopyTo(sealedBytes, 0);
        Convert.FromHexString(keys.CurrentId).CopyTo(sealedBytes, 3);
        RandomNumberGenerator.Fill(sealedBytes.AsSpan(7, 12));
        aes.Encrypt(sealedBytes.AsSpan(7, 12), plain, sealedBytes.AsSpan(Header), sealedBytes.AsSpan(19, 16), sealedBytes.AsSpan(0, 7));
        return sealedBytes;
    }

    /// <summary>True when sealed under the current master key.</summary>
    public static bool IsCurrent(MasterKeys keys, byte[] sealedBytes) =>
        sealedBytes.Length >= Header && sealedBytes.AsSpan(0, 3).SequenceEqual(Magic) && Convert.ToHexStringLower(sealedBytes, 3, 4) == keys.CurrentId;

    /// <summary>Opens a secret sealed under the current master key or a previous one in its grace period; false for any other.</summary>
    public static bool TryOpen(MasterKeys keys, KeyPurpose purpose, byte[] sealedBytes, out string secret)
    {
        secret = "";
        if (sealedBytes.Length < Header || !sealedBytes.AsSpan(0, 3).SequenceEqual(Magic)
            || keys.ById(Convert.ToHexStringLower(sealedBytes, 3, 4), purpose) is not { } key)
        {
            return false;
        }

        using var aes = new AesGcm(key, 16);
        var plain = new byte[sealedBytes.Length - Header];
        try
        {
            aes.Decrypt(sealedBytes.AsSpan(7, 12), sealedBytes.AsSpan(Header), sealedBytes.AsSpan(19, 16), plain, sealedBytes.AsSpan(0, 7));
        }
        catch (CryptographicException)
        {
            return false;
        }

        secret = Encoding.UTF8.GetString(plain);
        return true;
    }
}
