using System.Buffers.Binary;

namespace Atelier.Core.Jobs;

/// <summary>
/// Reads an image's format and dimensions from its header alone (PNG IHDR, JPEG SOF, WebP VP8/VP8L/VP8X), without
/// decoding a pixel: a small file that would decode to gigabytes is known for what it is from its first bytes.
/// </summary>
public static class ImageHeaders
{
    public const string Png = "png";
    public const string Jpeg = "jpeg";
    public const string WebP = "webp";

    /// <summary>The format and size the header declares, or null when the bytes are none of the three formats or are cut short.</summary>
    public static (string Format, int Width, int Height)? Read(ReadOnlySpan<byte> b)
    {
        if (b.Length >= 24 && b[..8].SequenceEqual((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) && b.Slice(12, 4).SequenceEqual("IHDR"u8))
        {
            return Sized(Png, BinaryPrimitives.ReadInt32BigEndian(b[16..]), BinaryPrimitives.ReadInt32BigEndian(b[20..]));
        }

        if (b.Length >= 4 && b[0] == 0xFF && b[1] == 0xD8)
        {
            return ReadJpeg(b);
        }

        if (b.Length >= 30 && b[..4].SequenceEqual("RIFF"u8) && b.Slice(8, 4).SequenceEqual("WEBP"u8))
        {
            return ReadWebP(b);
        }

        return null;
    }

    /// <summary>Walks the JPEG's segments to its start-of-frame (any of the SOF markers; not DHT, JPG or DAC, which share the range).</summary>
    private static (string, int, int)? ReadJpeg(ReadOnlySpan<byte> b)
    {
        var pos = 2;
        while (pos + 4 <= b.Length)
        {
            if (b[pos] != 0xFF)
            {
                return null;
            }

            var marker = b[pos + 1];
            if (marker == 0xFF)
            {
                pos++; // fill byte
                continue;
            }

            if (marker is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7))
            {
                pos += 2; // markers without a length
                continue;
            }

            if (marker is 0xD9 or 0xDA)
            {
                return null; // end of image, or scan data, before any frame header
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(b[(pos + 2)..]);
            if (length < 2)
            {
                return null;
            }

            if (marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC))
            {
                return pos + 9 <= b.Length
                    ? Sized(Jpeg, BinaryPrimitives.ReadUInt16BigEndian(b[(pos + 7)..]), BinaryPrimitives.ReadUInt16BigEndian(b[(pos + 5)..]))
                    : null;
            }

            pos += 2 + length;
        }

        return null;
    }

    private static (string, int, int)? ReadWebP(ReadOnlySpan<byte> b)
    {
        var chunk = b.Slice(12, 4);
        var data = b[20..];
        if (chunk.SequenceEqual("VP8 "u8))
        {
            // A key frame: 3 bytes of frame tag, the start code 9D 01 2A, then 14-bit width and height (2 bits of scale each).
            return data.Length >= 10 && data[3] == 0x9D && data[4] == 0x01 && data[5] == 0x2A
                ? Sized(WebP, BinaryPrimitives.ReadUInt16LittleEndian(data[6..]) & 0x3FFF, BinaryPrimitives.ReadUInt16LittleEndian(data[8..]) & 0x3FFF)
                : null;
        }

        if (chunk.SequenceEqual("VP8L"u8))
        {
            if (data.Length < 5 || data[0] != 0x2F)
            {
                return null;
            }

            var bits = BinaryPrimitives.ReadUInt32LittleEndian(data[1..]);
            return Sized(WebP, (int)(bits & 0x3FFF) + 1, (int)((bits >> 14) & 0x3FFF) + 1);
        }

        if (chunk.SequenceEqual("VP8X"u8))
        {
            // The canvas: 24-bit width − 1 and height − 1 after 4 bytes of flags.
            return data.Length >= 10 ? Sized(WebP, (data[4] | (data[5] << 8) | (data[6] << 16)) + 1, (data[7] | (data[8] << 8) | (data[9] << 16)) + 1) : null;
        }

        return null;
    }

    private static (string, int, int)? Sized(string format, int width, int height) => width > 0 && height > 0 ? (format, width, height) : null;
}
