using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;

namespace Atelier.Core.Security;

/// <summary>
/// Secrets the server issues (API tokens, platform admin keys, session credentials):
/// <c>{prefix}_{40 base62 random chars}{6 base62 chars of CRC-32}</c>. The checksum lets junk be refused
/// before any database read; only the SHA-256 of the whole secret is stored, and hashes are compared in constant time.
/// </summary>
public static class Secrets
{
    public const string TokenPrefix = "atk";
    public const string PlatformKeyPrefix = "atpk";
    public const string SessionPrefix = "ats";
    public const string WorkerKeyPrefix = "atw";

    private const string Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    private const int BodyLength = 40;
    private const int ChecksumLength = 6;

    public static string Issue(string prefix)
    {
        var body = RandomNumberGenerator.GetString(Base62, BodyLength);
        return $"{prefix}_{body}{Checksum(body)}";
    }

    /// <summary>True when the text has the prefix, the length, the alphabet and a matching checksum.</summary>
    public static bool IsWellFormed(string? secret, string prefix)
    {
        if (secret is null || secret.Length != prefix.Length + 1 + BodyLength + ChecksumLength
            || !secret.StartsWith(prefix, StringComparison.Ordinal) || secret[prefix.Length] != '_')
        {
            return false;
        }

        var rest = secret.AsSpan(prefix.Length + 1);
        foreach (var c in rest)
        {
            if (!char.IsAsciiLetterOrDigit(c))
            {
                return false;
            }
        }

        var body = rest[..BodyLength].ToString();
        return rest[BodyLength..].SequenceEqual(Checksum(body));
    }

    public static byte[] Hash(string secret) => SHA256.HashData(Encoding.UTF8.GetBytes(secret));

    /// <summary>Constant-time comparison of two hashes (short-circuits only on a length mismatch).</summary>
    public static bool HashEquals(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) => CryptographicOperations.FixedTimeEquals(a, b);

    /// <summary>What a list shows of a secret: the prefix and a few characters, never enough to use it.</summary>
    public static string DisplayPrefix(string secret) => secret[..Math.Min(secret.Length, secret.IndexOf('_') + 7)];

    private static string Checksum(string body)
    {
        var crc = Crc32.HashToUInt32(Encoding.ASCII.GetBytes(body));
        Span<char> chars = stackalloc char[ChecksumLength];
        for (var i = ChecksumLength - 1; i >= 0; i--)
        {
            chars[i] = Base62[(int)(crc % 62)];
            crc /= 62;
        }

        return new string(chars);
    }
}
