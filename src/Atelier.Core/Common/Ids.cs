using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Atelier.Core.Common;

/// <summary>
/// Opaque ids with a readable prefix (<c>ten_</c>, <c>app_</c>, …): 48 bits of milliseconds then 80 random bits,
/// in lowercase Crockford base32, so ids sort by creation time and never collide in practice.
/// </summary>
public static class Ids
{
    private const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz";

    public static string New(string prefix, TimeProvider clock)
    {
        Span<byte> random = stackalloc byte[16];
        RandomNumberGenerator.Fill(random);
        var ms = (ulong)clock.GetUtcNow().ToUnixTimeMilliseconds() & 0xFFFF_FFFF_FFFF;
        var value = ((UInt128)ms << 80) | (BinaryPrimitives.ReadUInt128BigEndian(random) & ((UInt128.One << 80) - 1));

        // 26 characters of 5 bits hold 130 bits; the top two are always zero.
        Span<char> chars = stackalloc char[26];
        for (var i = 25; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(value & 31)];
            value >>= 5;
        }

        return string.Concat(prefix, "_", chars);
    }
}
