using System.Text.Json;
using Atelier.Contracts.Errors;

namespace Atelier.Core.Jobs;

/// <summary>
/// Checks an A1111 txt2img/img2img body before it is queued: every field Atelier reads has the right type and range, so a
/// bad request is a 400 now rather than a failed job later. Fields it does not read are left alone (A1111 clients send many).
/// </summary>
public static class GenerationInput
{
    public const int MaxSide = 2048;
    public const int MaxImagesPerJob = 16;
    public const int MaxMaskBlur = 64;
    public const int MaxInpaintPadding = 1024;

    private static readonly System.Text.UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The init image formats the engines decode.</summary>
    public static readonly string[] ImageFormats = [ImageHeaders.Png, ImageHeaders.Jpeg, ImageHeaders.WebP];

    public static void Check(JsonElement input, bool img2img, GenerationOptions? limits = null, string agentName = "default")
    {
        limits ??= new GenerationOptions();
        CheckText(input, "input");
        String(input, "prompt", 20_000);
        String(input, "negative_prompt", 20_000);
        String(input, "sampler_name", 100);
        String(input, "sampler_index", 100);
        foreach (var field in new[] { "sampler_name", "sampler_index" })
        {
            if (input.TryGetProperty(field, out var sampler) && sampler.ValueKind == JsonValueKind.String && sampler.GetString() is { Length: > 0 } name
                && !Contracts.A1111.A1111Stock.IsSampler(name))
            {
                throw AtelierException.InvalidInput(field, $"Sampler not found: '{name}' is not one of AUTOMATIC1111's ({string.Join(", ", Contracts.A1111.A1111Stock.Samplers.Select(s => s.Name))})");
            }
        }
        String(input, "scheduler", 100);
        Integer(input, "seed", -1, long.MaxValue);
        var steps = Integer(input, "steps", 1, 150);
        Number(input, "cfg_scale", 0, 30);
        Number(input, "denoising_strength", 0, 1);
        Integer(input, "resize_mode", 0, 3);
        Integer(input, "subseed", -1, long.MaxValue);
        Number(input, "subseed_strength", 0, 1);
        Integer(input, "seed_resize_from_w", -1, MaxSide);
        Integer(input, "seed_resize_from_h", -1, MaxSide);
        var width = Integer(input, "width", 64, MaxSide);
        var height = Integer(input, "height", 64, MaxSide);
        if ((width ?? 512) % 8 != 0 || (height ?? 512) % 8 != 0)
        {
            throw AtelierException.InvalidInput("width/height", "must be multiples of 8");
        }

        var batch = Integer(input, "batch_size", 1, 8) ?? 1;
        var iter = Integer(input, "n_iter", 1, 8) ?? 1;
        if (batch * iter > MaxImagesPerJob)
        {
            throw AtelierException.InvalidInput("batch_size", $"batch_size × n_iter must be at most {MaxImagesPerJob}");
        }

        _ = steps;
        // The hires fix makes the pictures larger: what counts against the limit is the size it ends at.
        var (outW, outH) = ((long)(width ?? 512), (long)(height ?? 512));
        // The hires fields are checked only when the hires fix is on: clients send A1111's whole default body otherwise.
        var hires = !img2img && input.TryGetProperty("enable_hr", out var hr) && hr.ValueKind == JsonValueKind.True;
        if (hires)
        {
            var hrScale = Number(input, "hr_scale", 1, 8);
            var hrX = Integer(input, "hr_resize_x", 0, MaxSide) ?? 0;
            var hrY = Integer(input, "hr_resize_y", 0, MaxSide) ?? 0;
            Integer(input, "hr_second_pass_steps", 0, 150);
            String(input, "hr_upscaler", 100);
            String(input, "hr_sampler_name", 100);
            String(input, "hr_scheduler", 100);
            String(input, "hr_prompt", 20_000);
            String(input, "hr_negative_prompt", 20_000);
            (outW, outH) = (hrX, hrY) switch
            {
                (0, 0) => ((long)(outW * (hrScale ?? 2)), (long)(outH * (hrScale ?? 2))),
                (_, 0) => (hrX, hrX * outH / outW),
                (0, _) => (hrY * outW / outH, hrY),
                _ => (hrX, hrY),
            };
            if (outW > MaxSide || outH > MaxSide)
            {
                throw AtelierException.InvalidInput("hr_scale", $"the hires fix would make {outW}×{outH} pictures; at most {MaxSide} a side");
            }
        }

        var pixels = outW * outH * batch * iter;
        var maxPixels = limits.MaxPixelsFor(agentName);
        if (pixels > maxPixels)
        {
            throw AtelierException.InvalidInput("width/height/batch_size", $"width × height × batch_size × n_iter is {pixels}, over the {maxPixels} this agent makes in one job");
        }

        // A1111's inpainting fields, as the engines read them, wherever they are sent (the limits are the built-in engine's):
        // a wrong kind would otherwise fail the job after it was charged.
        // A1111's SD upscale script (img2img): its arguments as the built-in engine reads them, checked before queueing.
        if (input.TryGetProperty("script_name", out var script) && script.ValueKind == JsonValueKind.String
            && string.Equals(script.GetString()!.Trim(), "sd upscale", StringComparison.OrdinalIgnoreCase))
        {
            if (!img2img)
            {
                throw AtelierException.InvalidInput("script_name", "sd upscale is an img2img script: A1111's txt2img has no such script");
            }

            if (input.TryGetProperty("script_args", out var args) && args.ValueKind != JsonValueKind.Null)
            {
                SdUpscaleArgs(args, Math.Min(width ?? 512, height ?? 512));
            }
        }

        // A1111's refiner: a checkpoint's name and the fraction of the steps after which it takes over.
        String(input, "refiner_checkpoint", 300);
        Number(input, "refiner_switch_at", 0, 1);
        Integer(input, "mask_blur", 0, MaxMaskBlur);
        Integer(input, "mask_blur_x", 0, MaxMaskBlur);
        Integer(input, "mask_blur_y", 0, MaxMaskBlur);
        Integer(input, "inpainting_fill", 0, 3);
        Integer(input, "inpaint_full_res_padding", 0, MaxInpaintPadding);
        Flag(input, "inpaint_full_res");
        Flag(input, "inpainting_mask_invert");
        Flag(input, "mask_round");
        foreach (var name in new[] { "mask_blur_x", "mask_blur_y", "inpainting_fill", "inpaint_full_res_padding", "inpaint_full_res", "inpainting_mask_invert", "mask_round" })
        {
            // A1111 has no null for these (only mask_blur may be null): the engines could not read one.
            if (input.TryGetProperty(name, out var given) && given.ValueKind == JsonValueKind.Null)
            {
                throw AtelierException.InvalidInput(name, "must not be null");
            }
        }

        if (input.TryGetProperty("override_settings", out var o) && o.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
        {
            throw AtelierException.InvalidInput("override_settings", "must be an object");
        }

        if (img2img)
        {
            if (!input.TryGetProperty("init_images", out var images) || images.ValueKind != JsonValueKind.Array || images.GetArrayLength() == 0
                || images.EnumerateArray().Any(i => i.ValueKind != JsonValueKind.String || !LooksBase64(i.GetString()!)))
            {
                throw AtelierException.InvalidInput("init_images", "must hold at least one base64 image");
            }

            var i = 0;
            foreach (var image in images.EnumerateArray())
            {
                CheckImage(image.GetString()!, $"init_images[{i++}]", limits);
            }

            if (input.TryGetProperty("mask", out var mask) && mask.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
            {
                throw AtelierException.InvalidInput("mask", "must be a base64 image (PNG, JPEG or WebP)");
            }

            if (mask.ValueKind == JsonValueKind.String && mask.GetString() is { Length: > 0 } m)
            {
                CheckImage(m, "mask", limits);
            }
        }
    }

    /// <summary>
    /// An init image or mask: one of the formats the engines decode, no larger than the limits, as its header says (no
    /// pixel is decoded here: a picture that would inflate to gigabytes is refused from its first bytes).
    /// </summary>
    internal static void CheckImage(string base64, string field, GenerationOptions limits)
    {
        var bytes = Base64Bytes(base64) ?? throw AtelierException.InvalidInput(field, "is not base64");
        var header = ImageHeaders.Read(bytes) ?? throw AtelierException.InvalidInput(field, "must be a PNG, JPEG or WebP image");
        if (header.Width > limits.MaxInitImageWidth || header.Height > limits.MaxInitImageHeight
            || (long)header.Width * header.Height > limits.MaxInitImagePixels)
        {
            throw AtelierException.InvalidInput(field,
                $"is {header.Width}×{header.Height}; at most {limits.MaxInitImageWidth}×{limits.MaxInitImageHeight} and {limits.MaxInitImagePixels} pixels are accepted");
        }
    }

    internal static byte[]? Base64Bytes(string s)
    {
        var comma = s.StartsWith("data:", StringComparison.Ordinal) ? s.IndexOf(',', StringComparison.Ordinal) + 1 : 0;
        var body = s.AsSpan(comma);
        var buffer = new byte[(body.Length * 3 / 4) + 3];
        return Convert.TryFromBase64Chars(body, buffer, out var n) ? buffer[..n] : null;
    }

    /// <summary>Every string anywhere in the body must be valid Unicode (a lone surrogate cannot be stored or shown).</summary>
    internal static void CheckText(JsonElement e, string path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                try
                {
                    StrictUtf8.GetByteCount(e.GetString()!);
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
                {
                    throw AtelierException.InvalidInput(path, "holds text that is not valid Unicode");
                }

                break;
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    CheckText(p.Value, p.Name);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in e.EnumerateArray())
                {
                    CheckText(item, path);
                }

                break;
        }
    }

    /// <summary>How many images the request makes (batch_size × n_iter): what it costs in image credits.</summary>
    public static int ImagesOf(JsonElement input)
    {
        static int Of(JsonElement i, string name) => i.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) ? n : 1;
        return Math.Max(1, Of(input, "batch_size")) * Math.Max(1, Of(input, "n_iter"));
    }

    /// <summary>A1111's <c>override_settings.sd_model_checkpoint</c>, when the request names a model.</summary>
    public static string? CheckpointOf(JsonElement input) =>
        input.TryGetProperty("override_settings", out var o) && o.ValueKind == JsonValueKind.Object
        && o.TryGetProperty("sd_model_checkpoint", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;

    private static bool LooksBase64(string s)
    {
        var comma = s.StartsWith("data:", StringComparison.Ordinal) ? s.IndexOf(',', StringComparison.Ordinal) + 1 : 0;
        var body = s.AsSpan(comma);
        var buffer = new byte[(body.Length * 3 / 4) + 3];
        return body.Length > 0 && Convert.TryFromBase64Chars(body, buffer, out _);
    }

    private static void String(JsonElement input, string name, int max)
    {
        if (!input.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return;
        }

        if (v.ValueKind != JsonValueKind.String || v.GetString()!.Length > max)
        {
            throw AtelierException.InvalidInput(name, $"must be a string of at most {max} characters");
        }
    }

    private static long? Integer(JsonElement input, string name, long min, long max)
    {
        if (!input.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var n) || n < min || n > max)
        {
            throw AtelierException.InvalidInput(name, $"must be a whole number from {min} to {max}");
        }

        return n;
    }

    /// <summary>SD upscale's <c>script_args</c>: [anything, overlap 0–1024, an upscaler's index or name, scale in (0, 8]].</summary>
    private static void SdUpscaleArgs(JsonElement args, long tileSide)
    {
        if (args.ValueKind != JsonValueKind.Array)
        {
            throw AtelierException.InvalidInput("script_args", "must be a list: [info, tile overlap, upscaler, scale factor] for sd upscale");
        }

        JsonElement? At(int i) => args.GetArrayLength() > i && args[i].ValueKind != JsonValueKind.Null ? args[i] : null;
        static bool Whole(JsonElement v, double min, double max) =>
            v.ValueKind == JsonValueKind.Number && v.GetDouble() is var d && d == Math.Floor(d) && d >= min && d <= max;
        if (At(1) is { } overlap && !Whole(overlap, 0, Math.Min(1024, tileSide - 1)))
        {
            throw AtelierException.InvalidInput("script_args", $"sd upscale's tile overlap (script_args[1]) must be a whole number from 0 to {Math.Min(1024, tileSide - 1)}, less than the tile's sides");
        }

        if (At(2) is { } upscaler && !Whole(upscaler, 0, 1000)
            && !(upscaler.ValueKind == JsonValueKind.String && upscaler.GetString()!.Length <= 100))
        {
            throw AtelierException.InvalidInput("script_args", "sd upscale's upscaler (script_args[2]) must be an index into /sdapi/v1/upscalers or a name there");
        }

        if (At(3) is { } scale && (scale.ValueKind != JsonValueKind.Number || scale.GetDouble() is <= 0 or > 8))
        {
            throw AtelierException.InvalidInput("script_args", "sd upscale's scale factor (script_args[3]) must be more than 0 and at most 8");
        }
    }

    /// <summary>A flag as A1111 reads one: true, false, 0 or 1.</summary>
    private static void Flag(JsonElement input, string name)
    {
        if (input.TryGetProperty(name, out var v) && v.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null)
            && !(v.ValueKind == JsonValueKind.Number && v.GetDouble() is 0 or 1))
        {
            throw AtelierException.InvalidInput(name, "must be true, false, 0 or 1");
        }
    }

    private static double? Number(JsonElement input, string name, double min, double max)
    {
        if (!input.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Number || v.GetDouble() < min || v.GetDouble() > max)
        {
            throw AtelierException.InvalidInput(name, $"must be a number from {min} to {max}");
        }

        return v.GetDouble();
    }
}
