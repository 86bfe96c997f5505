using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Atelier.Engine.Images;

/// <summary>
/// Decodes 8-bit, non-interlaced PNGs (grey, grey+alpha, RGB, RGBA, all five filters) to RGB bytes, for img2img inputs.
/// With a target size, rows are inflated one at a time and sampled straight into the target (nearest pixel), so memory
/// follows the target, not the picture: a small file that inflates to gigabytes never does here.
/// </summary>
public static class PngDecoder
{
    /// <summary>The largest picture decoded at all, whatever the target.</summary>
    public const int MaxSide = 8192;

    public static (byte[] Rgb, int Width, int Height) Decode(byte[] png) => Decode(png, null);

    public static (byte[] Rgb, int Width, int Height) Decode(byte[] png, (int Width, int Height)? target)
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
                if (data[8] != 8 || data[12] != 0 || width is < 1 or > MaxSide || height is < 1 or > MaxSide)
                {
                    throw new InvalidDataException($"only 8-bit, non-interlaced PNGs up to {MaxSide} pixels are supported");
                }
            }
            else if (type == "IDAT")
            {
                idat.Write(data);
            }

            pos += 12 + len;
        }

        var channels = colorType switch { 0 => 1, 2 => 3, 4 => 2, 6 => 4, _ => throw new InvalidDataException("palette PNGs are not supported") };
        var (outW, outH) = target ?? (width, height);
        var stride = width * channels;
        var line = new byte[stride + 1];
        var current = new byte[stride];
        var previous = new byte[stride];
        var rgb = new byte[outW * outH * 3];
        // Which source row and column each target row and column samples (the mapping the pipeline's resize uses).
        var nextOut = 0;
        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        for (var y = 0; y < height && nextOut < outH; y++)
        {
            z.ReadExactly(line);
            var filter = line[0];
            for (var x = 0; x < stride; x++)
            {
                int a = x >= channels ? current[x - channels] : 0;
                int b = y > 0 ? previous[x] : 0;
                int c = x >= channels && y > 0 ? previous[x - channels] : 0;
                current[x] = (byte)(line[x + 1] + filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"unknown PNG filter {filter}"),
                });
            }

            for (; nextOut < outH && Math.Min(height - 1, (long)nextOut * height / outH) == y; nextOut++)
            {
                for (var ox = 0; ox < outW; ox++)
                {
                    var sx = (int)Math.Min(width - 1, (long)ox * width / outW);
                    for (var ch = 0; ch < 3; ch++)
                    {
                        rgb[(((nextOut * outW) + ox) * 3) + ch] = channels < 3 ? current[sx * channels] : current[(sx * channels) + ch];
                    }
                }
            }

            (previous, current) = (current, previous);
        }

        return (rgb, outW, outH);
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
