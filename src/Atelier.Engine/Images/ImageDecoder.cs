using SkiaSharp;

namespace Atelier.Engine.Images;

/// <summary>
/// Decodes an img2img input (PNG, JPEG or WebP, as A1111 clients send them) to RGB bytes at the size the job makes, so
/// memory follows the target and not the picture. PNG goes through <see cref="PngDecoder"/>; JPEG and WebP through Skia,
/// which decodes JPEG (and WebP) at a reduced scale where it can, before the last resize.
/// </summary>
public static class ImageDecoder
{
    /// <summary>The most pixels a picture may declare to be decoded at all (its header is read first).</summary>
    public const long MaxPixels = 64L << 20;

    /// <summary>Decodes a PNG, JPEG or WebP at its own size.</summary>
    public static (byte[] Rgb, int Width, int Height) DecodeOriginal(byte[] bytes)
    {
        if (bytes.Length >= 8 && bytes[0] == 0x89 && bytes[1] == (byte)'P')
        {
            return PngDecoder.Decode(bytes);
        }

        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data) ?? throw new InvalidDataException("not a PNG, JPEG or WebP image");
        return Decode(bytes, codec.Info.Width, codec.Info.Height);
    }

    public static (byte[] Rgb, int Width, int Height) Decode(byte[] bytes, int width, int height)
    {
        if (bytes.Length >= 8 && bytes[0] == 0x89 && bytes[1] == (byte)'P')
        {
            try
            {
                return PngDecoder.Decode(bytes, (width, height));
            }
            catch (EndOfStreamException e)
            {
                throw new InvalidDataException("the PNG ends before its last row", e);
            }
        }

        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data) ?? throw new InvalidDataException("not a PNG, JPEG or WebP image");
        if (codec.EncodedFormat is not (SKEncodedImageFormat.Jpeg or SKEncodedImageFormat.Webp))
        {
            throw new InvalidDataException($"{codec.EncodedFormat} images are not supported; send PNG, JPEG or WebP");
        }

        var (w, h) = (codec.Info.Width, codec.Info.Height);
        if (w is < 1 or > PngDecoder.MaxSide || h is < 1 or > PngDecoder.MaxSide || (long)w * h > MaxPixels)
        {
            throw new InvalidDataException($"the image is {w}×{h}; at most {PngDecoder.MaxSide} pixels a side are supported");
        }

        // The smallest scale the codec decodes natively that is still at least the target.
        var scale = Math.Max((float)width / w, (float)height / h);
        var size = codec.GetScaledDimensions(Math.Min(1f, scale));
        if (size.Width < width || size.Height < height)
        {
            size = new SKSizeI(w, h);
        }

        var info = new SKImageInfo(size.Width, size.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var decoded = new SKBitmap(info);
        var result = codec.GetPixels(info, decoded.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
        {
            throw new InvalidDataException($"the image could not be decoded ({result})");
        }

        using var resized = size.Width == width && size.Height == height
            ? decoded.Copy()
            : decoded.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul), new SKSamplingOptions(SKFilterMode.Linear))
              ?? throw new InvalidDataException("the image could not be resized");
        var rgba = resized.GetPixelSpan();
        var rgb = new byte[width * height * 3];
        for (var p = 0; p < width * height; p++)
        {
            rgb[p * 3] = rgba[p * 4];
            rgb[(p * 3) + 1] = rgba[(p * 4) + 1];
            rgb[(p * 3) + 2] = rgba[(p * 4) + 2];
        }

        return (rgb, width, height);
    }
}
