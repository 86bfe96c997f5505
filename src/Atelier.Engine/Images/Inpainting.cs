using Atelier.Engine.Pipeline;
using SkiaSharp;

namespace Atelier.Engine.Images;

/// <summary>A1111's inpainting fields (img2img with a <c>mask</c>), with the defaults its API gives them.</summary>
public sealed record InpaintSettings
{
    /// <summary><c>inpainting_fill</c>: what the masked area starts from.</summary>
    public const int FillBlur = 0, FillOriginal = 1, FillLatentNoise = 2, FillLatentNothing = 3;

    public const int MaxBlur = 64, MaxPadding = 1024;

    /// <summary><c>mask_blur_x</c> and <c>mask_blur_y</c> (<c>mask_blur</c> sets both): the Gaussian's σ in pixels, 0 for none.</summary>
    public int BlurX { get; init; } = 4;
    public int BlurY { get; init; } = 4;
    /// <summary><c>mask_round</c>: the mask is made black and white (over 128 is masked) before anything else, and the latent mask rounded.</summary>
    public bool Round { get; init; } = true;
    /// <summary><c>inpainting_fill</c>: 0 fill (the masked area painted over with the colours around it), 1 original, 2 latent noise, 3 latent nothing.</summary>
    public int Fill { get; init; } = FillBlur;
    /// <summary><c>inpaint_full_res</c> ("only masked"): the masked area, with <see cref="Padding"/>, is cut out, generated at the job's size and pasted back.</summary>
    public bool FullRes { get; init; } = true;
    /// <summary><c>inpaint_full_res_padding</c>: pixels around the masked area that the cut-out takes in.</summary>
    public int Padding { get; init; }
    /// <summary><c>inpainting_mask_invert</c>: the unmasked area is generated instead.</summary>
    public bool Invert { get; init; }

    /// <summary>The request's values in range, or an <see cref="EngineRequestException"/> that says which is not.</summary>
    public void Validate()
    {
        if (BlurX is < 0 or > MaxBlur || BlurY is < 0 or > MaxBlur)
        {
            throw new EngineRequestException($"mask_blur must be between 0 and {MaxBlur}");
        }

        if (Fill is < FillBlur or > FillLatentNothing)
        {
            throw new EngineRequestException("inpainting_fill must be 0 (fill), 1 (original), 2 (latent noise) or 3 (latent nothing)");
        }

        if (Padding is < 0 or > MaxPadding)
        {
            throw new EngineRequestException($"inpaint_full_res_padding must be between 0 and {MaxPadding}");
        }
    }
}

/// <summary>
/// An inpainting job worked out in picture space, as AUTOMATIC1111 does it: the picture the sampler starts from, the
/// latent mask that says where it may change, and how the generated picture goes back over the original.
/// </summary>
public sealed class InpaintPlan
{
    private readonly byte[] _overlayRgb;
    private readonly byte[] _overlayMask;

    internal InpaintPlan(InpaintSettings settings, byte[] initRgb, byte[] imageMask, float[] latentMask, byte[] overlayRgb, byte[] overlayMask, int outputWidth, int outputHeight,
        (int X, int Y, int Width, int Height)? pasteTo)
    {
        Settings = settings;
        InitRgb = initRgb;
        ImageMask = imageMask;
        LatentMask = latentMask;
        _overlayRgb = overlayRgb;
        _overlayMask = overlayMask;
        OutputWidth = outputWidth;
        OutputHeight = outputHeight;
        PasteTo = pasteTo;
    }

    public InpaintSettings Settings { get; }

    /// <summary>The picture the job starts from, at the job's size: cut out and resized, and filled where masked (unless <c>original</c>).</summary>
    public byte[] InitRgb { get; }

    /// <summary>The mask at the job's size, over <see cref="InitRgb"/> (255 is generated): what an engine that takes a picture mask is given.</summary>
    public byte[] ImageMask { get; }

    /// <summary>At the latents' size (the job's / 8), row by row: 1 where the picture is generated, 0 where the init's latents are kept.</summary>
    public float[] LatentMask { get; }

    /// <summary>The cut-out (only masked): where in the original the generated picture goes back, and at what size.</summary>
    public (int X, int Y, int Width, int Height)? PasteTo { get; }

    /// <summary>The finished picture's size: the original's for "only masked", else the job's.</summary>
    public int OutputWidth { get; }
    public int OutputHeight { get; }

    /// <summary>
    /// The generated picture (the job's size) put back: resized into the cut-out of the original (only masked), then
    /// the original laid over it wherever the (blurred) mask does not reach, so the unmasked pixels are the original's.
    /// </summary>
    public byte[] Composite(byte[] generated, int width, int height)
    {
        byte[] under;
        if (PasteTo is { } paste)
        {
            under = (byte[])_overlayRgb.Clone();
            var (fitted, _, _) = ImageDecoder.Resize(generated, width, height, paste.Width, paste.Height, ImageDecoder.CropAndResize);
            for (var y = 0; y < paste.Height; y++)
            {
                Buffer.BlockCopy(fitted, y * paste.Width * 3, under, (((paste.Y + y) * OutputWidth) + paste.X) * 3, paste.Width * 3);
            }
        }
        else
        {
            under = generated;
        }

        var result = new byte[OutputWidth * OutputHeight * 3];
        for (var p = 0; p < OutputWidth * OutputHeight; p++)
        {
            // The overlay's alpha is 255 − mask: the original where nothing is masked, the generated picture where all is.
            var keep = 255 - _overlayMask[p];
            for (var c = 0; c < 3; c++)
            {
                var i = (p * 3) + c;
                result[i] = (byte)(((_overlayRgb[i] * keep) + (under[i] * (255 - keep)) + 127) / 255);
            }
        }

        return result;
    }

    /// <summary>The infotext pairs A1111 adds for an inpainting job.</summary>
    public IEnumerable<KeyValuePair<string, object?>> InfoParameters() =>
    [
        new("Mask blur", Settings.BlurX == Settings.BlurY ? Settings.BlurX : null),
        new("Mask mode", Settings.Invert ? "Inpaint not masked" : null),
        new("Masked content", Settings.Fill switch
        {
            InpaintSettings.FillBlur => "fill",
            InpaintSettings.FillLatentNoise => "latent noise",
            InpaintSettings.FillLatentNothing => "latent nothing",
            _ => null,
        }),
        new("Inpaint area", PasteTo is null ? null : "Only masked"),
        new("Masked area padding", PasteTo is null ? null : Settings.Padding),
    ];
}

/// <summary>
/// AUTOMATIC1111's inpainting in picture space (<c>StableDiffusionProcessingImg2Img.init</c> and <c>masking</c>): the
/// mask made binary, inverted, blurred; for "only masked" the masked area's box (with padding, widened to the job's
/// aspect) cut out of the picture and the mask; the masked area filled from its surroundings; the latent mask.
/// </summary>
public static class Inpainting
{
    /// <summary>The plan for an init picture and a mask as a client sends them (PNG, JPEG or WebP bytes); see the other overload.</summary>
    public static InpaintPlan? Prepare(byte[] image, byte[] mask, InpaintSettings settings, int width, int height, int resizeMode) =>
        Prepare(ImageDecoder.DecodeOriginal(image), DecodeMask(mask), settings, width, height, resizeMode);

    /// <summary>A1111's message when "only masked" finds nothing masked and it runs a plain img2img instead.</summary>
    public const string BlankMask = "Unable to perform \"Inpaint Only mask\" because mask is blank, switch to img2img mode.";

    /// <summary>
    /// The plan for an init picture (its own size) and a mask (any size: it is brought to the picture's), or null when
    /// "only masked" finds nothing masked: A1111 then runs a plain img2img (the caller says so).
    /// </summary>
    public static InpaintPlan? Prepare((byte[] Rgb, int Width, int Height) original, (byte[] Gray, int Width, int Height) mask, InpaintSettings settings,
        int width, int height, int resizeMode)
    {
        settings.Validate();
        var (ow, oh) = (original.Width, original.Height);
        var m = mask.Width == ow && mask.Height == oh ? (byte[])mask.Gray.Clone() : NearestGray(mask.Gray, mask.Width, mask.Height, ow, oh);
        for (var i = 0; i < m.Length; i++)
        {
            var v = settings.Round ? (m[i] > 128 ? (byte)255 : (byte)0) : m[i];
            m[i] = settings.Invert ? (byte)(255 - v) : v;
        }

        if (settings.BlurX > 0)
        {
            m = GaussianBlur(m, ow, oh, settings.BlurX, horizontal: true);
        }

        if (settings.BlurY > 0)
        {
            m = GaussianBlur(m, ow, oh, settings.BlurY, horizontal: false);
        }

        byte[] imageMask, overlayMask, overlayRgb, init;
        (int X, int Y, int Width, int Height)? paste = null;
        int outW, outH;
        if (settings.FullRes)
        {
            if (BoundingBox(m, ow, oh) is not { } box)
            {
                return null;
            }

            var (x1, y1, x2, y2) = ExpandToAspect(Pad(box, settings.Padding, ow, oh), width, height, ow, oh);
            var (cw, ch) = (x2 - x1, y2 - y1);
            imageMask = ResizeGray(CropGray(m, ow, x1, y1, cw, ch), cw, ch, width, height, ImageDecoder.ResizeAndFill);
            init = ImageDecoder.Resize(CropRgb(original.Rgb, ow, x1, y1, cw, ch), cw, ch, width, height, ImageDecoder.ResizeAndFill).Rgb;
            (overlayRgb, overlayMask, outW, outH, paste) = (original.Rgb, m, ow, oh, (x1, y1, cw, ch));
        }
        else
        {
            imageMask = ResizeGray(m, ow, oh, width, height, resizeMode);
            init = ImageDecoder.Resize(original.Rgb, ow, oh, width, height, resizeMode).Rgb;
            // A1111 doubles the resized mask for the overlay, so its blurred edge lets more of the generated picture through.
            overlayMask = [.. imageMask.Select(v => (byte)Math.Min(255, v * 2))];
            (overlayRgb, outW, outH) = ((byte[])init.Clone(), width, height);
        }

        if (settings.Fill != InpaintSettings.FillOriginal)
        {
            init = FillMasked(init, imageMask, width, height);
        }

        return new InpaintPlan(settings, init, imageMask, LatentMaskOf(imageMask, width, height, settings.Round), overlayRgb, overlayMask, outW, outH, paste);
    }

    /// <summary>
    /// A mask as A1111 reads one: the alpha channel when the picture has transparency, else its luminance (ITU-R 601,
    /// as PIL's <c>convert('L')</c>). PNG, JPEG or WebP, at its own size.
    /// </summary>
    public static (byte[] Gray, int Width, int Height) DecodeMask(byte[] bytes)
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data) ?? throw new InvalidDataException("the mask is not a PNG, JPEG or WebP image");
        if (codec.EncodedFormat is not (SKEncodedImageFormat.Png or SKEncodedImageFormat.Jpeg or SKEncodedImageFormat.Webp))
        {
            throw new InvalidDataException($"{codec.EncodedFormat} masks are not supported; send PNG, JPEG or WebP");
        }

        var (w, h) = (codec.Info.Width, codec.Info.Height);
        if (w is < 1 or > PngDecoder.MaxSide || h is < 1 or > PngDecoder.MaxSide || (long)w * h > ImageDecoder.MaxPixels)
        {
            throw new InvalidDataException($"the mask is {w}×{h}; at most {PngDecoder.MaxSide} pixels a side are supported");
        }

        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
        {
            throw new InvalidDataException($"the mask could not be decoded ({result})");
        }

        var rgba = bitmap.GetPixelSpan();
        var gray = new byte[w * h];
        var transparent = false;
        for (var p = 0; p < gray.Length && !transparent; p++)
        {
            transparent = rgba[(p * 4) + 3] != 255;
        }

        for (var p = 0; p < gray.Length; p++)
        {
            gray[p] = transparent ? rgba[(p * 4) + 3]
                : (byte)(((rgba[p * 4] * 19595) + (rgba[(p * 4) + 1] * 38470) + (rgba[(p * 4) + 2] * 7471) + 0x8000) >> 16);
        }

        return (gray, w, h);
    }

    /// <summary>
    /// The smallest box holding every masked (non-zero) pixel, as (left, top, right, bottom) with the right and bottom
    /// exclusive (PIL's <c>getbbox</c>); null when nothing is masked.
    /// </summary>
    public static (int X1, int Y1, int X2, int Y2)? BoundingBox(byte[] mask, int w, int h)
    {
        int x1 = w, y1 = h, x2 = -1, y2 = -1;
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                if (mask[(y * w) + x] != 0)
                {
                    (x1, y1, x2, y2) = (Math.Min(x1, x), Math.Min(y1, y), Math.Max(x2, x), Math.Max(y2, y));
                }
            }
        }

        return x2 < 0 ? null : (x1, y1, x2 + 1, y2 + 1);
    }

    private static (int, int, int, int) Pad((int X1, int Y1, int X2, int Y2) box, int pad, int w, int h) =>
        pad == 0 ? box : (Math.Max(box.X1 - pad, 0), Math.Max(box.Y1 - pad, 0), Math.Min(box.X2 + pad, w), Math.Min(box.Y2 + pad, h));

    /// <summary>
    /// A1111's <c>expand_crop_region</c>: the box grown on its short side, about its centre, to the job's aspect, and
    /// moved back inside the picture where it crosses an edge (clipped where the picture is too small).
    /// </summary>
    public static (int X1, int Y1, int X2, int Y2) ExpandToAspect((int X1, int Y1, int X2, int Y2) box, int width, int height, int imageWidth, int imageHeight)
    {
        var (x1, y1, x2, y2) = box;
        var processing = (double)width / height;
        if ((double)(x2 - x1) / (y2 - y1) > processing)
        {
            var diff = (int)(((x2 - x1) / processing) - (y2 - y1));
            (y1, y2) = Widen(y1 - (diff / 2), y2 + diff - (diff / 2), imageHeight);
        }
        else
        {
            var diff = (int)(((y2 - y1) * processing) - (x2 - x1));
            (x1, x2) = Widen(x1 - (diff / 2), x2 + diff - (diff / 2), imageWidth);
        }

        return (x1, y1, x2, y2);

        static (int, int) Widen(int a, int b, int limit)
        {
            if (b >= limit)
            {
                (a, b) = (a - (b - limit), limit);
            }

            if (a < 0)
            {
                (a, b) = (0, b - a);
            }

            return (a, Math.Min(b, limit));
        }
    }

    /// <summary>
    /// OpenCV's <c>GaussianBlur</c> along one axis as A1111 calls it: a kernel of 2·⌊2.5σ + 0.5⌋ + 1 taps, the
    /// picture's edge reflected without repeating the edge pixel (BORDER_REFLECT_101), rounded to bytes.
    /// </summary>
    public static byte[] GaussianBlur(byte[] src, int w, int h, double sigma, bool horizontal)
    {
        var size = (2 * (int)((2.5 * sigma) + 0.5)) + 1;
        var half = size / 2;
        var kernel = new double[size];
        double sum = 0;
        for (var i = 0; i < size; i++)
        {
            var d = i - half;
            sum += kernel[i] = Math.Exp(-(d * d) / (2 * sigma * sigma));
        }

        for (var i = 0; i < size; i++)
        {
            kernel[i] /= sum;
        }

        var length = horizontal ? w : h;
        var across = horizontal ? h : w;
        var output = new byte[w * h];
        for (var a = 0; a < across; a++)
        {
            for (var o = 0; o < length; o++)
            {
                double v = 0;
                for (var k = 0; k < size; k++)
                {
                    var s = Reflect101(o + k - half, length);
                    v += kernel[k] * src[horizontal ? (a * w) + s : (s * w) + a];
                }

                output[horizontal ? (a * w) + o : (o * w) + a] = (byte)Math.Clamp(Math.Round(v), 0, 255);
            }
        }

        return output;
    }

    private static int Reflect101(int i, int n)
    {
        if (n == 1)
        {
            return 0;
        }

        while (i < 0 || i >= n)
        {
            i = i < 0 ? -i : (2 * n) - 2 - i;
        }

        return i;
    }

    /// <summary>
    /// A1111's <c>masking.fill</c>: the masked area painted with the colours around it, by laying the picture (its
    /// masked part transparent) blurred at radius 256, 64, 16 (twice), 4 (four times), 2 (twice) and 0 over itself,
    /// in premultiplied alpha, so each pass fills what the sharper ones leave open. The blur is PIL's: three passes of
    /// an extended box filter whose radius matches the Gaussian's variance.
    /// </summary>
    public static byte[] FillMasked(byte[] rgb, byte[] mask, int w, int h)
    {
        var n = w * h;
        // The picture in premultiplied alpha, alpha = 1 − mask: four planes.
        var planes = new float[4][];
        for (var c = 0; c < 4; c++)
        {
            planes[c] = new float[n];
        }

        for (var p = 0; p < n; p++)
        {
            var alpha = (255 - mask[p]) / 255f;
            planes[3][p] = alpha;
            for (var c = 0; c < 3; c++)
            {
                planes[c][p] = rgb[(p * 3) + c] / 255f * alpha;
            }
        }

        var result = new float[4 * n]; // straight RGBA, starting fully transparent
        foreach (var (radius, repeats) in new[] { (256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1) })
        {
            var blurred = radius == 0 ? planes : [.. planes.Select(plane => BoxBlur3(plane, w, h, radius))];
            for (var r = 0; r < repeats; r++)
            {
                for (var p = 0; p < n; p++)
                {
                    var sa = Math.Clamp(blurred[3][p], 0, 1);
                    if (sa <= 0)
                    {
                        continue;
                    }

                    var da = result[(p * 4) + 3];
                    var oa = sa + (da * (1 - sa));
                    for (var c = 0; c < 3; c++)
                    {
                        var sc = blurred[c][p] / sa; // back to straight colour
                        result[(p * 4) + c] = ((sc * sa) + (result[(p * 4) + c] * da * (1 - sa))) / oa;
                    }

                    result[(p * 4) + 3] = oa;
                }
            }
        }

        var filled = new byte[n * 3];
        for (var p = 0; p < n; p++)
        {
            for (var c = 0; c < 3; c++)
            {
                filled[(p * 3) + c] = (byte)Math.Clamp(Math.Round(result[(p * 4) + c] * 255), 0, 255);
            }
        }

        return filled;
    }

    /// <summary>PIL's Gaussian blur of one plane: three extended box passes along the rows, then three along the columns.</summary>
    private static float[] BoxBlur3(float[] plane, int w, int h, double radius)
    {
        // PIL's _gaussian_blur_radius: the box radius l + a whose three passes have the Gaussian's variance.
        var sigma2 = radius * radius / 3;
        var l = Math.Floor((Math.Sqrt((12 * sigma2) + 1) - 1) / 2);
        var a = (((2 * l) + 1) * ((l * (l + 1)) - (3 * sigma2))) / (6 * (sigma2 - ((l + 1) * (l + 1))));
        var current = plane;
        for (var pass = 0; pass < 3; pass++)
        {
            current = BoxPass(current, w, h, (int)l, (float)a, horizontal: true);
        }

        for (var pass = 0; pass < 3; pass++)
        {
            current = BoxPass(current, w, h, (int)l, (float)a, horizontal: false);
        }

        return current;
    }

    /// <summary>One box pass of radius <paramref name="l"/> plus the fraction <paramref name="a"/> of the next pixel out each side, edges repeated.</summary>
    private static float[] BoxPass(float[] src, int w, int h, int l, float a, bool horizontal)
    {
        var length = horizontal ? w : h;
        var across = horizontal ? h : w;
        var output = new float[w * h];
        var prefix = new double[length + (2 * (l + 1)) + 1];
        var divisor = (2 * l) + 1 + (2 * a);
        for (var line = 0; line < across; line++)
        {
            float At(int i)
            {
                var s = Math.Clamp(i, 0, length - 1);
                return src[horizontal ? (line * w) + s : (s * w) + line];
            }

            // prefix[k] is the sum of the first k values of the line padded by l + 1 repeated edge values each side.
            for (var k = 0; k < length + (2 * (l + 1)); k++)
            {
                prefix[k + 1] = prefix[k] + At(k - (l + 1));
            }

            for (var o = 0; o < length; o++)
            {
                var inner = prefix[o + (2 * l) + 2] - prefix[o + 1];
                var v = (inner + (a * (At(o - l - 1) + At(o + l + 1)))) / divisor;
                output[horizontal ? (line * w) + o : (o * w) + line] = (float)v;
            }
        }

        return output;
    }

    /// <summary>
    /// A1111's latent mask: the job-size mask shrunk to the latents' size with PIL's bicubic (its default for RGB),
    /// over 255, rounded when <c>mask_round</c> is on.
    /// </summary>
    private static float[] LatentMaskOf(byte[] mask, int width, int height, bool round)
    {
        var (lw, lh) = (width / 8, height / 8);
        var rgb = new byte[mask.Length * 3];
        for (var p = 0; p < mask.Length; p++)
        {
            rgb[p * 3] = rgb[(p * 3) + 1] = rgb[(p * 3) + 2] = mask[p];
        }

        var small = Upscaling.Resize(rgb, width, height, lw, lh, "Bicubic");
        var result = new float[lw * lh];
        for (var p = 0; p < result.Length; p++)
        {
            var v = small[p * 3] / 255f;
            result[p] = round ? MathF.Round(v, MidpointRounding.ToEven) : v;
        }

        return result;
    }

    private static byte[] ResizeGray(byte[] gray, int w, int h, int tw, int th, int resizeMode)
    {
        var rgb = new byte[gray.Length * 3];
        for (var p = 0; p < gray.Length; p++)
        {
            rgb[p * 3] = rgb[(p * 3) + 1] = rgb[(p * 3) + 2] = gray[p];
        }

        var (resized, _, _) = ImageDecoder.Resize(rgb, w, h, tw, th, resizeMode);
        var result = new byte[tw * th];
        for (var p = 0; p < result.Length; p++)
        {
            result[p] = resized[p * 3];
        }

        return result;
    }

    private static byte[] NearestGray(byte[] gray, int w, int h, int tw, int th)
    {
        var result = new byte[tw * th];
        for (var y = 0; y < th; y++)
        {
            var sy = Math.Min(h - 1, (int)((y + 0.5) * h / th));
            for (var x = 0; x < tw; x++)
            {
                result[(y * tw) + x] = gray[(sy * w) + Math.Min(w - 1, (int)((x + 0.5) * w / tw))];
            }
        }

        return result;
    }

    private static byte[] CropGray(byte[] gray, int w, int x, int y, int cw, int ch)
    {
        var result = new byte[cw * ch];
        for (var r = 0; r < ch; r++)
        {
            Buffer.BlockCopy(gray, ((y + r) * w) + x, result, r * cw, cw);
        }

        return result;
    }

    private static byte[] CropRgb(byte[] rgb, int w, int x, int y, int cw, int ch)
    {
        var result = new byte[cw * ch * 3];
        for (var r = 0; r < ch; r++)
        {
            Buffer.BlockCopy(rgb, (((y + r) * w) + x) * 3, result, r * cw * 3, cw * 3);
        }

        return result;
    }
}
