using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Atelier.Engine.Images;

/// <summary>Decodes 8-bit, non-interlaced PNGs (grey, grey+alpha, RGB, RGBA, all five filters) to RGB bytes, for img2img inputs.</summary>
public static class PngDecoder
{
    public static (byte[] Rgb, int Width, int Height) Decode(byte[] png)
    {
        if (png.Length < 8 || png[0] != 0x89 || png[1] != (byte)'P')
        {
            throw new InvalidDataException("not a PNG");
        }

        int width = 0, height = 0, colorType = 0;
        using var idat = new MemoryStream();
        var pos = 8;
        while (pos + 12 <= png.Length)
        {
            var len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            if (len < 0 || pos + 12 + len > png.Length)
            {
                throw new InvalidDataException("truncated PNG");
            }

            var type = Encoding.ASCII.GetString(png, pos + 4, 4);
            var data = png.AsSpan(pos + 8, len);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                colorType = data[9];
                if (data[8] != 8 || data[12] != 0 || width is < 1 or > 8192 || height is < 1 or > 8192)
                {
                    throw new InvalidDataException("only 8-bit, non-interlaced PNGs up to 8192 pixels are supported");
                }
            }
            else if (type == "IDAT")
            {
                idat.Write(data);
            }

            pos += 12 + len;
        }

        var channels = colorType switch { 0 => 1, 2 => 3, 4 => 2, 6 => 4, _ => throw new InvalidDataException("palette PNGs are not supported") };
        var stride = width * channels;
        var raw = new byte[height * (stride + 1)];
        idat.Position = 0;
        using (var z = new ZLibStream(idat, CompressionMode.Decompress))
        {
            z.ReadExactly(raw);
        }

        var pixels = new byte[height * stride];
        for (var y = 0; y < height; y++)
        {
            var filter = raw[y * (stride + 1)];
            var line = raw.AsSpan((y * (stride + 1)) + 1, stride);
            var current = pixels.AsSpan(y * stride, stride);
            var previous = y > 0 ? pixels.AsSpan((y - 1) * stride, stride) : Span<byte>.Empty;
            for (var x = 0; x < stride; x++)
            {
                int a = x >= channels ? current[x - channels] : 0;
                int b = y > 0 ? previous[x] : 0;
                int c = x >= channels && y > 0 ? previous[x - channels] : 0;
                current[x] = (byte)(line[x] + filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"unknown PNG filter {filter}"),
                });
            }
        }

        var rgb = new byte[width * height * 3];
        for (var p = 0; p < width * height; p++)
        {
            for (var ch = 0; ch < 3; ch++)
            {
                rgb[(p * 3) + ch] = channels < 3 ? pixels[p * channels] : pixels[(p * channels) + ch];
            }
        }

        return (rgb, width, height);
    }

    private static int Paeth(int a, int b, int c)
    {
        var p = a + b - c;
        var pa = Math.Abs(p - a);
        var pb = Math.Abs(p - b);
        var pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
