using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;

namespace Atelier.Engine.Images;

/// <summary>
/// A minimal PNG writer and text-chunk reader: 8-bit RGB, one <c>parameters</c> text chunk (tEXt when the text is
/// Latin-1, iTXt otherwise, as PIL writes it), deterministic bytes for the same pixels and text.
/// </summary>
public static class Png
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static byte[] Encode(byte[] rgb, int width, int height, IReadOnlyDictionary<string, string>? text = null)
    {
        using var output = new MemoryStream();
        output.Write(Signature);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // colour type: RGB
        Chunk(output, "IHDR", ihdr);
        foreach (var (key, value) in text ?? new Dictionary<string, string>())
        {
            if (value.All(c => c <= 0xFF))
            {
                Chunk(output, "tEXt", [.. Encoding.Latin1.GetBytes(key), 0, .. Encoding.Latin1.GetBytes(value)]);
            }
            else
            {
                Chunk(output, "iTXt", [.. Encoding.Latin1.GetBytes(key), 0, 0, 0, 0, 0, .. Encoding.UTF8.GetBytes(value)]);
            }
        }

        using (var raw = new MemoryStream())
        {
            using (var z = new ZLibStream(raw, CompressionLevel.Fastest, leaveOpen: true))
            {
                var stride = width * 3;
                for (var y = 0; y < height; y++)
                {
                    z.WriteByte(0); // filter: none
                    z.Write(rgb, y * stride, stride);
                }
            }

            Chunk(output, "IDAT", raw.ToArray());
        }

        Chunk(output, "IEND", []);
        return output.ToArray();
    }

    /// <summary>The text chunks (tEXt, uncompressed iTXt) of a PNG; empty for anything that is not a PNG.</summary>
    public static Dictionary<string, string> ReadText(ReadOnlySpan<byte> png)
    {
        var result = new Dictionary<string, string>();
        if (png.Length < 8 || !png[..8].SequenceEqual(Signature))
        {
            return result;
        }

        var pos = 8;
        while (pos + 12 <= png.Length)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(png[pos..]);
            if (length < 0 || pos + 12 + length > png.Length)
            {
                break;
            }

            var type = Encoding.ASCII.GetString(png.Slice(pos + 4, 4));
            var data = png.Slice(pos + 8, length);
            var nul = data.IndexOf((byte)0);
            if (nul > 0 && type == "tEXt")
            {
                result[Encoding.Latin1.GetString(data[..nul])] = Encoding.Latin1.GetString(data[(nul + 1)..]);
            }
            else if (nul > 0 && type == "iTXt" && data.Length > nul + 2 && data[nul + 1] == 0)
            {
                var rest = data[(nul + 3)..];
                var langEnd = rest.IndexOf((byte)0);
                var translatedEnd = langEnd < 0 ? -1 : rest[(langEnd + 1)..].IndexOf((byte)0);
                if (translatedEnd >= 0)
                {
                    result[Encoding.Latin1.GetString(data[..nul])] = Encoding.UTF8.GetString(rest[(langEnd + 1 + translatedEnd + 1)..]);
                }
            }

            pos += 12 + length;
        }

        return result;
    }

    private static void Chunk(Stream output, string type, byte[] data)
    {
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header, data.Length);
        Encoding.ASCII.GetBytes(type, header[4..]);
        output.Write(header);
        output.Write(data);
        var crc = new Crc32();
        crc.Append(header[4..]);
        crc.Append(data);
        Span<byte> sum = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(sum, crc.GetCurrentHashAsUInt32());
        output.Write(sum);
    }
}
