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

    /// <summary>A1111's img2img <c>resize_mode</c> values.</summary>
    public const int JustResize = 0, CropAndResize = 1, ResizeAndFill = 2, LatentUpscale = 3;

    /// <summary>
    /// An img2img input brought to the job's size as AUTOMATIC1111 does it (<c>images.resize_image</c>, Lanczos):
    /// 0 just resize (the aspect changes); 1 crop and resize (scaled to cover, centre-cropped); 2 resize and fill (scaled
    /// to fit, centred, the bands left over filled by stretching the picture's edge rows or columns); 3 "just resize
    /// (latent upscale)", which A1111 does in latent space, is done as 0 here.
    /// </summary>
    public static (byte[] Rgb, int Width, int Height) DecodeForImg2Img(byte[] bytes, int width, int height, int resizeMode)
    {
        if (resizeMode is < JustResize or > LatentUpscale)
        {
            throw new InvalidDataException($"resize_mode must be 0 (just resize), 1 (crop and resize), 2 (resize and fill) or 3 (latent upscale), not {resizeMode}");
        }

        var (rgb, w, h) = DecodeOriginal(bytes);
        return Resize(rgb, w, h, width, height, resizeMode);
    }

    /// <summary>RGB bytes brought to <paramref name="width"/>×<paramref name="height"/> by an A1111 <c>resize_mode</c> (see <see cref="DecodeForImg2Img"/>).</summary>
    public static (byte[] Rgb, int Width, int Height) Resize(byte[] rgb, int w, int h, int width, int height, int resizeMode)
    {
        if (resizeMode is JustResize or LatentUpscale)
        {
            return (w == width && h == height ? rgb : Upscaling.Resize(rgb, w, h, width, height, "Lanczos"), width, height);
        }

        // A1111's integer arithmetic, so that the same picture lands on the same pixels.
        var ratio = (double)width / height;
        var sourceRatio = (double)w / h;
        int sw, sh;
        if (resizeMode == CropAndResize)
        {
            sw = ratio > sourceRatio ? width : w * height / h;
            sh = ratio <= sourceRatio ? height : h * width / w;
        }
        else
        {
            sw = ratio < sourceRatio ? width : w * height / h;
            sh = ratio >= sourceRatio ? height : h * width / w;
        }

        sw = Math.Max(1, sw);
        sh = Math.Max(1, sh);
        var resized = sw == w && sh == h ? rgb : Upscaling.Resize(rgb, w, h, sw, sh, "Lanczos");
        var result = new byte[width * height * 3];
        var left = (width / 2) - (sw / 2);
        var top = (height / 2) - (sh / 2);
        for (var y = 0; y < height; y++)
        {
            // Outside the pasted picture (resize and fill): the nearest edge row or column of it, stretched.
            var sy = Math.Clamp(y - top, 0, sh - 1);
            for (var x = 0; x < width; x++)
            {
                var sx = Math.Clamp(x - left, 0, sw - 1);
                var from = ((sy * sw) + sx) * 3;
                var to = ((y * width) + x) * 3;
                result[to] = resized[from];
                result[to + 1] = resized[from + 1];
                result[to + 2] = resized[from + 2];
            }
        }

        return (result, width, height);
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
