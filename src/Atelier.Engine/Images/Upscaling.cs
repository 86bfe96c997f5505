using System.Text.Json;

namespace Atelier.Engine.Images;

/// <summary>
/// AUTOMATIC1111's extras (<c>extra-single-image</c>, <c>extra-batch-images</c>) with the upscalers that need no model:
/// <c>None</c> (the image as it is), <c>Lanczos</c> (a separable Lanczos-3 filter, as PIL's LANCZOS) and <c>Nearest</c>.
/// Scale by a factor (<c>resize_mode</c> 0) or to a size (1: scaled to cover it, then centre-cropped when
/// <c>upscaling_crop</c>), a second upscaler blended in by <c>extras_upscaler_2_visibility</c>. Face restoration has no
/// model here: its visibility is reported in <c>html_info</c>, not applied.
/// </summary>
public static class Upscaling
{
    public static readonly string[] Upscalers = ["None", "Lanczos", "Nearest"];

    /// <summary>The largest output, in pixels (16,777,216: 4096×4096).</summary>
    public const long MaxOutputPixels = 16L << 20;

    public sealed record ExtrasResult(byte[] Png, string HtmlInfo);

    /// <summary>Runs one extras request on one image (A1111's field names, any case); throws <see cref="ArgumentException"/> for what A1111 refuses.</summary>
    /// <remarks><paramref name="models"/>: ONNX upscaler files, by name, beside the built-in ones (<see cref="OnnxUpscaler"/>).</remarks>
    public static ExtrasResult Run(JsonElement request, byte[] image, IReadOnlyList<Lora.NetworkFile>? models = null)
    {
        var (rgb, w, h) = ImageDecoder.DecodeOriginal(image);
        var mode = Int(request, "resize_mode", 0);
        var first = Upscaler(Text(request, "upscaler_1", "None"), models);
        var second = Upscaler(Text(request, "upscaler_2", "None"), models);
        var visibility = Math.Clamp(Number(request, "extras_upscaler_2_visibility", 0), 0, 1);
        var notes = new List<string>();
        if (Number(request, "gfpgan_visibility", 0) > 0 || Number(request, "codeformer_visibility", 0) > 0)
        {
            notes.Add("face restoration is not available here (no GFPGAN or CodeFormer model); the image was not restored");
        }

        int tw, th;
        var cropTo = ((int W, int H)?)null;
        if (mode == 1)
        {
            var ww = Int(request, "upscaling_resize_w", 512);
            var hh = Int(request, "upscaling_resize_h", 512);
            if (ww < 1 || hh < 1)
            {
                throw new ArgumentException("upscaling_resize_w and upscaling_resize_h must be positive");
            }

            var by = Math.Max((double)ww / w, (double)hh / h);
            (tw, th) = ((int)Math.Round(w * by), (int)Math.Round(h * by));
            if (Bool(request, "upscaling_crop", true))
            {
                cropTo = (ww, hh);
            }
        }
        else
        {
            var by = Number(request, "upscaling_resize", 2);
            if (by is <= 0 or > 8)
            {
                throw new ArgumentException("upscaling_resize must be more than 0 and at most 8");
            }

            (tw, th) = ((int)Math.Round(w * by), (int)Math.Round(h * by));
        }

        if (first == "None")
        {
            // A1111's None upscaler returns the image as it is.
            (tw, th) = (w, h);
        }

        if (tw < 1 || th < 1 || (long)tw * th > MaxOutputPixels)
        {
            throw new ArgumentException($"the result would be {tw}×{th}; at most {MaxOutputPixels} pixels are produced");
        }

        var result = Resize(rgb, w, h, tw, th, first, models);
        if (second != "None" && visibility > 0 && first != "None")
        {
            var other = Resize(rgb, w, h, tw, th, second, models);
            for (var i = 0; i < result.Length; i++)
            {
                result[i] = (byte)Math.Round((result[i] * (1 - visibility)) + (other[i] * visibility));
            }
        }

        if (cropTo is { } crop && (crop.W < tw || crop.H < th))
        {
            (result, tw, th) = Crop(result, tw, th, Math.Min(crop.W, tw), Math.Min(crop.H, th));
        }

        var info = notes.Count == 0 ? "" : string.Concat(notes.Select(n => $"<p>{System.Net.WebUtility.HtmlEncode(n)}</p>"));
        return new ExtrasResult(Png.Encode(result, tw, th), info);
    }

    /// <summary>The most images one <c>extra-batch-images</c> request may hold.</summary>
    public const int MaxBatchImages = 16;

    /// <summary><c>extra-single-image</c>: A1111's <c>{html_info, image}</c> for its body.</summary>
    public static Dictionary<string, object> OneImage(JsonElement body, IReadOnlyList<Lora.NetworkFile>? models = null)
    {
        var image = Field(body, "image") is { ValueKind: JsonValueKind.String } text ? Base64Image.Decode(text.GetString()!) : null;
        if (image is null)
        {
            throw new ArgumentException("image: a base64 PNG, JPEG or WebP is required");
        }

        var result = Run(body, image, models);
        return new() { ["html_info"] = result.HtmlInfo, ["image"] = Convert.ToBase64String(result.Png) };
    }

    /// <summary><c>extra-batch-images</c>: A1111's <c>{html_info, images}</c> for <c>imageList: [{data, name}]</c>.</summary>
    public static Dictionary<string, object> ManyImages(JsonElement body, IReadOnlyList<Lora.NetworkFile>? models = null)
    {
        if (Field(body, "imageList") is not { ValueKind: JsonValueKind.Array } list)
        {
            throw new ArgumentException("imageList: a list of {data, name} is required");
        }

        if (list.GetArrayLength() > MaxBatchImages)
        {
            throw new ArgumentException($"imageList: at most {MaxBatchImages} images per request");
        }

        var images = new List<string>();
        var info = "";
        var index = 0;
        foreach (var item in list.EnumerateArray())
        {
            var bytes = Field(item, "data") is { ValueKind: JsonValueKind.String } text ? Base64Image.Decode(text.GetString()!) : null;
            if (bytes is null)
            {
                throw new ArgumentException($"imageList[{index}].data: a base64 PNG, JPEG or WebP is required");
            }

            var result = Run(body, bytes, models);
            images.Add(Convert.ToBase64String(result.Png));
            info = result.HtmlInfo;
            index++;
        }

        return new() { ["html_info"] = info, ["images"] = images };
    }

    /// <summary>The canonical name of an upscaler this engine has (any case); <see cref="ArgumentException"/> otherwise, as A1111 refuses an unknown one.</summary>
    public static string Upscaler(string name, IReadOnlyList<Lora.NetworkFile>? models = null) =>
        Upscalers.FirstOrDefault(u => string.Equals(u, name, StringComparison.OrdinalIgnoreCase))
        ?? models?.FirstOrDefault(m => m.Path == Lora.NetworkFile.Find(models, name))?.Name
        ?? throw new ArgumentException($"could not find upscaler named {name}");

    /// <summary>RGB bytes resized with the named upscaler (one of <paramref name="models"/>: its ONNX model, opened for the call).</summary>
    public static byte[] Resize(byte[] rgb, int w, int h, int tw, int th, string upscaler, IReadOnlyList<Lora.NetworkFile>? models)
    {
        if (models is not null && !Upscalers.Contains(upscaler) && Lora.NetworkFile.Find(models, upscaler) is { } path)
        {
            using var model = OnnxUpscaler.Open(path);
            return model.Resize(rgb, w, h, tw, th);
        }

        return Resize(rgb, w, h, tw, th, upscaler);
    }

    /// <summary>RGB bytes resized with the named built-in upscaler.</summary>
    public static byte[] Resize(byte[] rgb, int w, int h, int tw, int th, string upscaler) => upscaler switch
    {
        "None" => tw == w && th == h ? (byte[])rgb.Clone() : Lanczos(rgb, w, h, tw, th),
        "Nearest" => Nearest(rgb, w, h, tw, th),
        // Not an upscaler of A1111's list: PIL's default for Image.resize, which A1111 uses for the latent mask.
        "Bicubic" => Pass(Pass(rgb, w, h, tw, horizontal: true, Bicubic, 2), tw, h, th, horizontal: false, Bicubic, 2),
        _ => Lanczos(rgb, w, h, tw, th),
    };

    private static byte[] Nearest(byte[] rgb, int w, int h, int tw, int th)
    {
        var output = new byte[tw * th * 3];
        for (var y = 0; y < th; y++)
        {
            var sy = Math.Min(h - 1, (int)((y + 0.5) * h / th));
            for (var x = 0; x < tw; x++)
            {
                var sx = Math.Min(w - 1, (int)((x + 0.5) * w / tw));
                Array.Copy(rgb, ((sy * w) + sx) * 3, output, ((y * tw) + x) * 3, 3);
            }
        }

        return output;
    }

    /// <summary>Separable Lanczos-3 (support widened by the scale when shrinking), rows then columns, bytes in between.</summary>
    private static byte[] Lanczos(byte[] rgb, int w, int h, int tw, int th)
    {
        var rows = Pass(rgb, w, h, tw, horizontal: true, Kernel, 3);
        return Pass(rows, tw, h, th, horizontal: false, Kernel, 3);
    }

    private static byte[] Pass(byte[] src, int w, int h, int target, bool horizontal, Func<double, double> kernel, double radius)
    {
        var length = horizontal ? w : h;
        var (ow, oh) = horizontal ? (target, h) : (w, target);
        var output = new byte[ow * oh * 3];
        var scale = (double)length / target;
        var support = radius * Math.Max(1, scale);
        var weights = new double[(int)Math.Ceiling(support * 2) + 2];
        for (var o = 0; o < target; o++)
        {
            var centre = ((o + 0.5) * scale) - 0.5;
            var first = (int)Math.Ceiling(centre - support);
            var last = (int)Math.Floor(centre + support);
            var count = last - first + 1;
            double sum = 0;
            for (var k = 0; k < count; k++)
            {
                var weight = kernel((first + k - centre) / Math.Max(1, scale));
                weights[k] = weight;
                sum += weight;
            }

            var across = horizontal ? h : w;
            for (var a = 0; a < across; a++)
            {
                double r = 0, g = 0, b = 0;
                for (var k = 0; k < count; k++)
                {
                    var s = Math.Clamp(first + k, 0, length - 1);
                    var i = horizontal ? ((a * w) + s) * 3 : ((s * w) + a) * 3;
                    r += src[i] * weights[k];
                    g += src[i + 1] * weights[k];
                    b += src[i + 2] * weights[k];
                }

                var oi = horizontal ? ((a * ow) + o) * 3 : ((o * ow) + a) * 3;
                output[oi] = Clamp(r / sum);
                output[oi + 1] = Clamp(g / sum);
                output[oi + 2] = Clamp(b / sum);
            }
        }

        return output;
    }

    /// <summary>Keys' cubic with a = −0.5 (PIL's bicubic), support 2.</summary>
    private static double Bicubic(double x)
    {
        const double a = -0.5;
        x = Math.Abs(x);
        return x < 1 ? ((((a + 2) * x) - (a + 3)) * x * x) + 1
            : x < 2 ? ((((((a * x) - (5 * a)) * x) + (8 * a)) * x) - (4 * a))
            : 0;
    }

    private static double Kernel(double x)
    {
        x = Math.Abs(x);
        if (x < 1e-12)
        {
            return 1;
        }

        if (x >= 3)
        {
            return 0;
        }

        var px = Math.PI * x;
        return 3 * Math.Sin(px) * Math.Sin(px / 3) / (px * px);
    }

    private static byte Clamp(double v) => (byte)Math.Clamp(Math.Round(v), 0, 255);

    private static (byte[] Rgb, int W, int H) Crop(byte[] rgb, int w, int h, int cw, int ch)
    {
        var x0 = (w - cw) / 2;
        var y0 = (h - ch) / 2;
        var output = new byte[cw * ch * 3];
        for (var y = 0; y < ch; y++)
        {
            Array.Copy(rgb, (((y0 + y) * w) + x0) * 3, output, y * cw * 3, cw * 3);
        }

        return (output, cw, ch);
    }

    private static JsonElement? Field(JsonElement request, string name) =>
        request.ValueKind == JsonValueKind.Object
            ? request.EnumerateObject().Where(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)).Select(p => (JsonElement?)p.Value).FirstOrDefault()
            : null;

    private static double Number(JsonElement request, string name, double fallback) =>
        Field(request, name) is { ValueKind: JsonValueKind.Number } v ? v.GetDouble() : fallback;

    private static int Int(JsonElement request, string name, int fallback) => (int)Math.Round(Number(request, name, fallback));

    private static bool Bool(JsonElement request, string name, bool fallback) =>
        Field(request, name) is { } v && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    private static string Text(JsonElement request, string name, string fallback) =>
        Field(request, name) is { ValueKind: JsonValueKind.String } v ? v.GetString()! : fallback;
}
