using System.Buffers.Binary;

namespace Atelier.Core.Tests.Jobs;

/// <summary>Image headers made by hand: only the bytes a header reader looks at, no pixels.</summary>
internal static class TestImages
{
    public static byte[] Png(int width, int height)
    {
        var b = new byte[33];
        new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, (byte)'I', (byte)'H', (byte)'D', (byte)'R' }.CopyTo(b, 0);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(16), width);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(20), height);
        return b;
    }

    /// <summary>SOI, an APP0 segment, a DHT segment (a marker inside the SOF range that is no frame), then the frame header.</summary>
    public static byte[] Jpeg(int width, int height, byte frameMarker = 0xC0)
    {
        var b = new List<byte> { 0xFF, 0xD8 };
        b.AddRange([0xFF, 0xE0, 0x00, 0x06, (byte)'J', (byte)'F', (byte)'I', (byte)'F']);
        b.AddRange([0xFF, 0xC4, 0x00, 0x07, 0x00, 0x01, 0x02, 0x03, 0x04]);
        b.AddRange([0xFF, frameMarker, 0x00, 0x11, 0x08, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, 0x03]);
        b.AddRange(new byte[12]);
        return [.. b];
    }

    public static byte[] WebPLossless(int width, int height)
    {
        var b = Riff("VP8L", 10);
        b[20] = 0x2F;
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(21), (uint)(width - 1) | ((uint)(height - 1) << 14));
        return b;
    }

    public static byte[] WebPExtended(int width, int height)
    {
        var b = Riff("VP8X", 10);
        b[24] = (byte)(width - 1);
        b[25] = (byte)((width - 1) >> 8);
        b[26] = (byte)((width - 1) >> 16);
        b[27] = (byte)(height - 1);
        b[28] = (byte)((height - 1) >> 8);
        b[29] = (byte)((height - 1) >> 16);
        return b;
    }

    public static byte[] WebPLossy(int width, int height)
    {
        var b = Riff("VP8 ", 10);
        b[23] = 0x9D;
        b[24] = 0x01;
        b[25] = 0x2A;
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(26), (ushort)width);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(28), (ushort)height);
        return b;
    }

    private static byte[] Riff(string chunk, int payload)
    {
        var b = new byte[20 + payload];
        "RIFF"u8.CopyTo(b);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), (uint)(b.Length - 8));
        "WEBP"u8.CopyTo(b.AsSpan(8));
        System.Text.Encoding.ASCII.GetBytes(chunk).CopyTo(b, 12);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), (uint)payload);
        return b;
    }
}
