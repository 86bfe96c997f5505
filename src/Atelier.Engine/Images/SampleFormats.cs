using System.Buffers.Binary;
using System.Text;
using SkiaSharp;

namespace Atelier.Engine.Images;

/// <summary>
/// AUTOMATIC1111's <c>samples_format</c> for the images an API answer carries: <c>png</c> as made (the infotext in the
/// <c>parameters</c> text chunk), or <c>jpg</c>/<c>jpeg</c>/<c>webp</c> at <c>jpeg_quality</c> with the infotext in an
/// EXIF UserComment, as A1111 writes it with piexif (big-endian TIFF, <c>UNICODE\0</c> then UTF-16BE), which its
/// <c>png-info</c> reads back. <see cref="ReadUserComment"/> reads it from a JPEG's APP1 or a WebP's EXIF chunk.
/// </summary>
public static class SampleFormats
{
    public const string Png = "png";
    public const int DefaultQuality = 80;

    /// <summary>The formats A1111 encodes; any other value is not one (A1111 answers 500 "Invalid image format").</summary>
    public static bool IsKnown(string? format) => format?.ToLowerInvariant() is "png" or "jpg" or "jpeg" or "webp";

    /// <summary>Re-encodes an engine PNG (with its <c>parameters</c>) into <paramref name="format"/>; PNG is returned as it is.</summary>
    public static byte[] FromPng(byte[] png, string format, int quality = DefaultQuality)
    {
        var f = format.ToLowerInvariant();
        if (f == Png || png.Length < 8 || png[0] != 0x89 || png[1] != (byte)'P')
        {
            // PNG asked for, or not a PNG to begin with (an engine that encoded its own format already): as it is.
            return png;
        }

        if (!IsKnown(f))
        {
            throw new ArgumentException($"samples_format must be png, jpg, jpeg or webp, not '{format}'", nameof(format));
        }

        var (rgb, w, h) = PngDecoder.Decode(png);
        var parameters = Images.Png.ReadText(png).GetValueOrDefault("parameters") ?? "";
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var pixels = bitmap.GetPixelSpan();
        for (var p = 0; p < w * h; p++)
        {
            pixels[p * 4] = rgb[p * 3];
            pixels[(p * 4) + 1] = rgb[(p * 3) + 1];
            pixels[(p * 4) + 2] = rgb[(p * 3) + 2];
            pixels[(p * 4) + 3] = 255;
        }

        using var image = SKImage.FromBitmap(bitmap);
        var webp = f == "webp";
        using var data = image.Encode(webp ? SKEncodedImageFormat.Webp : SKEncodedImageFormat.Jpeg, Math.Clamp(quality, 1, 100))
                         ?? throw new InvalidOperationException($"the image could not be encoded as {f}");
        var encoded = data.ToArray();
        var exif = Exif(parameters);
        return webp ? WithWebpExif(encoded, exif, w, h) : WithJpegExif(encoded, exif);
    }

    /// <summary>The MIME type of a format.</summary>
    public static string ContentType(string format) => format.ToLowerInvariant() switch
    {
        "jpg" or "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => "image/png",
    };

    /// <summary>The EXIF UserComment of a JPEG or WebP (the infotext A1111 writes there), or null.</summary>
    public static string? ReadUserComment(byte[] image)
    {
        var tiff = image.Length > 3 && image[0] == 0xFF && image[1] == 0xD8 ? JpegExif(image)
            : image.Length > 12 && Encoding.ASCII.GetString(image, 0, 4) == "RIFF" && Encoding.ASCII.GetString(image, 8, 4) == "WEBP" ? WebpExif(image)
            : null;
        return tiff is null ? null : UserComment(tiff);
    }

    /// <summary>TIFF (big-endian, as piexif writes it): IFD0 holding only the Exif IFD pointer, the Exif IFD holding only the UserComment.</summary>
    private static byte[] Exif(string parameters)
    {
        var comment = (byte[])[.. "UNICODE\0"u8, .. Encoding.BigEndianUnicode.GetBytes(parameters)];
        const int exifIfd = 8 + 2 + 12 + 4;
        const int data = exifIfd + 2 + 12 + 4;
        var tiff = new byte[data + comment.Length];
        "MM"u8.CopyTo(tiff);
        BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(2), 42);
        BinaryPrimitives.WriteUInt32BigEndian(tiff.AsSpan(4), 8);
        Entry(tiff, 8, 0x8769, 4, 1, exifIfd);
        Entry(tiff, exifIfd, 0x9286, 7, (uint)comment.Length, data);
        comment.CopyTo(tiff, data);
        return tiff;

        static void Entry(byte[] t, int at, ushort tag, ushort type, uint count, uint value)
        {
            BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(at), 1);
            BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(at + 2), tag);
            BinaryPrimitives.WriteUInt16BigEndian(t.AsSpan(at + 4), type);
            BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(at + 6), count);
            BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(at + 10), value);
            BinaryPrimitives.WriteUInt32BigEndian(t.AsSpan(at + 14), 0);
        }
    }

    /// <summary>An APP1 "Exif" segment right after SOI; an infotext too long for one segment (64 KiB) is left out rather than cut.</summary>
    private static byte[] WithJpegExif(byte[] jpeg, byte[] tiff)
    {
        var length = 2 + 6 + tiff.Length;
        if (length > ushort.MaxValue)
        {
            return jpeg;
        }

        var segment = new byte[2 + length];
        segment[0] = 0xFF;
        segment[1] = 0xE1;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)length);
        "Exif\0\0"u8.CopyTo(segment.AsSpan(4));
        tiff.CopyTo(segment, 10);
        return [.. jpeg.AsSpan(0, 2), .. segment, .. jpeg.AsSpan(2)];
    }

    /// <summary>The extended WebP layout: a VP8X chunk with the EXIF flag, the image chunks, then an EXIF chunk (the TIFF without the "Exif\0\0" header, as PIL writes it).</summary>
    private static byte[] WithWebpExif(byte[] webp, byte[] tiff, int width, int height)
    {
        var chunks = new List<byte[]>();
        byte[]? vp8x = null;
        for (var at = 12; at + 8 <= webp.Length;)
        {
            var size = (int)BinaryPrimitives.ReadUInt32LittleEndian(webp.AsSpan(at + 4));
            var whole = webp.AsSpan(at, Math.Min(8 + size + (size & 1), webp.Length - at)).ToArray();
            if (Encoding.ASCII.GetString(webp, at, 4) == "VP8X")
            {
                vp8x = whole;
            }
            else if (Encoding.ASCII.GetString(webp, at, 4) != "EXIF")
            {
                chunks.Add(whole);
            }

            at += 8 + size + (size & 1);
        }

        if (vp8x is null)
        {
            vp8x = new byte[18];
            "VP8X"u8.CopyTo(vp8x);
            BinaryPrimitives.WriteUInt32LittleEndian(vp8x.AsSpan(4), 10);
            WriteUInt24(vp8x, 12, width - 1);
            WriteUInt24(vp8x, 15, height - 1);
        }

        vp8x[8] |= 0x08;
        var exif = new byte[8 + tiff.Length + (tiff.Length & 1)];
        "EXIF"u8.CopyTo(exif);
        BinaryPrimitives.WriteUInt32LittleEndian(exif.AsSpan(4), (uint)tiff.Length);
        tiff.CopyTo(exif, 8);
        var body = (byte[])[.. "WEBP"u8, .. vp8x, .. chunks.SelectMany(c => c), .. exif];
        var result = new byte[8 + body.Length];
        "RIFF"u8.CopyTo(result);
        BinaryPrimitives.WriteUInt32LittleEndian(result.AsSpan(4), (uint)body.Length);
        body.CopyTo(result, 8);
        return result;

        static void WriteUInt24(byte[] b, int at, int v)
        {
            b[at] = (byte)v;
            b[at + 1] = (byte)(v >> 8);
            b[at + 2] = (byte)(v >> 16);
        }
    }

    private static byte[]? JpegExif(byte[] jpeg)
    {
        for (var at = 2; at + 4 <= jpeg.Length && jpeg[at] == 0xFF;)
        {
            var marker = jpeg[at + 1];
            if (marker is 0xD9 or 0xDA)
            {
                return null;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(jpeg.AsSpan(at + 2));
            if (length < 2 || at + 2 + length > jpeg.Length)
            {
                return null;
            }

            if (marker == 0xE1 && length >= 8 && jpeg.AsSpan(at + 4, 6).SequenceEqual("Exif\0\0"u8))
            {
                return jpeg.AsSpan(at + 10, length - 8).ToArray();
            }

            at += 2 + length;
        }

        return null;
    }

    private static byte[]? WebpExif(byte[] webp)
    {
        for (var at = 12; at + 8 <= webp.Length;)
        {
            var size = (int)BinaryPrimitives.ReadUInt32LittleEndian(webp.AsSpan(at + 4));
            if (size < 0 || at + 8 + (long)size > webp.Length)
            {
                return null;
            }

            if (Encoding.ASCII.GetString(webp, at, 4) == "EXIF")
            {
                var data = webp.AsSpan(at + 8, size);
                return (data.StartsWith("Exif\0\0"u8) ? data[6..] : data).ToArray();
            }

            at += 8 + size + (size & 1);
        }

        return null;
    }

    /// <summary>The UserComment (0x9286) of the Exif IFD, decoded as piexif's helper does (UNICODE: UTF-16BE; ASCII; else UTF-8).</summary>
    private static string? UserComment(byte[] tiff)
    {
        if (tiff.Length < 8)
        {
            return null;
        }

        var big = tiff[0] == (byte)'M';
        uint U32(int at) => big ? BinaryPrimitives.ReadUInt32BigEndian(tiff.AsSpan(at)) : BinaryPrimitives.ReadUInt32LittleEndian(tiff.AsSpan(at));
        ushort U16(int at) => big ? BinaryPrimitives.ReadUInt16BigEndian(tiff.AsSpan(at)) : BinaryPrimitives.ReadUInt16LittleEndian(tiff.AsSpan(at));
        (uint Count, uint Value)? Find(long ifd, ushort tag)
        {
            if (ifd + 2 > tiff.Length)
            {
                return null;
            }

            var n = U16((int)ifd);
            for (var i = 0; i < n; i++)
            {
                var at = (int)ifd + 2 + (i * 12);
                if (at + 12 > tiff.Length)
                {
                    return null;
                }

                if (U16(at) == tag)
                {
                    return (U32(at + 4), U32(at + 8));
                }
            }

            return null;
        }

        if (Find(U32(4), 0x8769) is not { } exifIfd || Find(exifIfd.Value, 0x9286) is not { } comment)
        {
            return null;
        }

        var start = comment.Count <= 4 ? 0 : (long)comment.Value;
        if (comment.Count < 8 || start + comment.Count > tiff.Length)
        {
            return null;
        }

        var bytes = tiff.AsSpan((int)start, (int)comment.Count);
        return bytes[..8].SequenceEqual("UNICODE\0"u8) ? Encoding.BigEndianUnicode.GetString(bytes[8..])
            : bytes[..8].SequenceEqual("ASCII\0\0\0"u8) ? Encoding.ASCII.GetString(bytes[8..])
            : Encoding.UTF8.GetString(bytes[8..]);
    }
}
