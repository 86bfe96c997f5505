using System.Text.Json;
using System.Text.Json.Serialization;

namespace Atelier.Contracts.A1111;

/// <summary>
/// AUTOMATIC1111's txt2img/img2img request (snake_case, its defaults). Fields Atelier does not implement (hires fix,
/// face restoration, scripts, tiling) are accepted and reported back in <c>info</c>, never refused.
/// </summary>
public sealed class A1111Request
{
    public string Prompt { get; set; } = "";
    public string NegativePrompt { get; set; } = "";
    public List<string>? Styles { get; set; }
    public long Seed { get; set; } = -1;
    public long Subseed { get; set; } = -1;
    public double SubseedStrength { get; set; }
    public int SeedResizeFromH { get; set; } = -1;
    public int SeedResizeFromW { get; set; } = -1;
    public string? SamplerName { get; set; }
    public string? SamplerIndex { get; set; }
    public string? Scheduler { get; set; }
    public int Steps { get; set; } = 50;
    public double CfgScale { get; set; } = 7.0;
    public int Width { get; set; } = 512;
    public int Height { get; set; } = 512;
    public int BatchSize { get; set; } = 1;
    public int NIter { get; set; } = 1;
    public bool RestoreFaces { get; set; }
    public bool Tiling { get; set; }
    public double? DenoisingStrength { get; set; }
    public bool EnableHr { get; set; }
    public double HrScale { get; set; } = 2.0;
    public string? HrUpscaler { get; set; }
    public int HrSecondPassSteps { get; set; }
    public int HrResizeX { get; set; }
    public int HrResizeY { get; set; }
    public string? HrSamplerName { get; set; }
    public string? HrScheduler { get; set; }
    public string? HrPrompt { get; set; }
    public string? HrNegativePrompt { get; set; }
    public Dictionary<string, JsonElement>? OverrideSettings { get; set; }
    public bool OverrideSettingsRestoreAfterwards { get; set; } = true;
    public string? ScriptName { get; set; }
    public Dictionary<string, JsonElement>? AlwaysonScripts { get; set; }
    public bool SendImages { get; set; } = true;
    public bool SaveImages { get; set; }
    public string? ForceTaskId { get; set; }
    public List<string>? InitImages { get; set; }
    public int ResizeMode { get; set; }
    public string? Mask { get; set; }
    /// <summary>A1111's inpainting fields (with a <see cref="Mask"/>): <c>mask_blur</c> sets both blurs when given.</summary>
    public int? MaskBlur { get; set; }
    public int MaskBlurX { get; set; } = 4;
    public int MaskBlurY { get; set; } = 4;
    [JsonConverter(typeof(LooseBool))]
    public bool MaskRound { get; set; } = true;
    public int InpaintingFill { get; set; }
    [JsonConverter(typeof(LooseBool))]
    public bool InpaintFullRes { get; set; } = true;
    public int InpaintFullResPadding { get; set; }
    [JsonConverter(typeof(LooseInt))]
    public int InpaintingMaskInvert { get; set; }

    /// <summary>Everything else a client sends, kept so that <c>parameters</c> echoes the request.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed record A1111Response(IReadOnlyList<string> Images, A1111Request Parameters, string Info);

public sealed record ProgressState(bool Skipped, bool Interrupted, string Job, int JobCount, string JobTimestamp, int JobNo, int SamplingStep, int SamplingSteps);

public sealed record ProgressResponse(double Progress, double EtaRelative, ProgressState State, string? CurrentImage, string? Textinfo);

public sealed record PngInfoRequest(string? Image);

public sealed record PngInfoResponse(string Info, Dictionary<string, string> Items, Dictionary<string, string> Parameters);

public sealed record SdModel(string Title, string ModelName, string Hash, string Sha256, string Filename, string? Config);

public sealed record SamplerItem(string Name, IReadOnlyList<string> Aliases, Dictionary<string, string> Options);

public sealed record SchedulerItem(string Name, string Label, IReadOnlyList<string>? Aliases, double? DefaultRho, bool NeedInnerModel);

/// <summary>A1111's <c>info</c> (a JSON string in every txt2img/img2img answer), built the same way by the engine and the worker.</summary>
public static class A1111Info
{
    public static Dictionary<string, object?> Build(A1111Request req, string sampler, string schedule, IReadOnlyList<long> seeds,
        IReadOnlyList<string> infotexts, string modelName, string modelHash, DateTimeOffset at, IReadOnlyList<long>? subseeds = null) => new()
    {
        ["prompt"] = req.Prompt,
        ["all_prompts"] = seeds.Select(_ => req.Prompt).ToList(),
        ["negative_prompt"] = req.NegativePrompt,
        ["all_negative_prompts"] = seeds.Select(_ => req.NegativePrompt).ToList(),
        ["seed"] = seeds.Count > 0 ? seeds[0] : req.Seed,
        ["all_seeds"] = seeds,
        ["subseed"] = subseeds is { Count: > 0 } ? subseeds[0] : req.Subseed,
        ["all_subseeds"] = subseeds ?? [.. seeds.Select(_ => req.Subseed)],
        ["subseed_strength"] = req.SubseedStrength,
        ["seed_resize_from_w"] = req.SeedResizeFromW,
        ["seed_resize_from_h"] = req.SeedResizeFromH,
        ["width"] = req.Width,
        ["height"] = req.Height,
        ["sampler_name"] = sampler,
        ["scheduler"] = schedule,
        ["cfg_scale"] = req.CfgScale,
        ["steps"] = req.Steps,
        ["batch_size"] = req.BatchSize,
        ["restore_faces"] = req.RestoreFaces,
        ["sd_model_name"] = modelName,
        ["sd_model_hash"] = modelHash,
        ["sd_vae_name"] = null,
        ["sd_vae_hash"] = null,
        ["denoising_strength"] = req.DenoisingStrength,
        ["clip_skip"] = 1,
        ["index_of_first_image"] = 0,
        ["infotexts"] = infotexts,
        ["styles"] = req.Styles ?? [],
        ["job_timestamp"] = at.UtcDateTime.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture),
        ["version"] = "atelier",
    };
}

/// <summary>A flag as A1111's clients send it: a JSON boolean, or a number (0 is false), as pydantic reads one.</summary>
public sealed class LooseBool : JsonConverter<bool>
{
    public override bool Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.True => true,
        JsonTokenType.False => false,
        JsonTokenType.Number when reader.TryGetDouble(out var d) && d is 0 or 1 => d != 0,
        _ => throw new JsonException("expected true, false, 0 or 1"),
    };

    public override void Write(Utf8JsonWriter writer, bool value, JsonSerializerOptions options) => writer.WriteBooleanValue(value);
}

/// <summary>An integer that clients also send as a boolean (true is 1), as pydantic reads one.</summary>
public sealed class LooseInt : JsonConverter<int>
{
    public override int Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.True => 1,
        JsonTokenType.False => 0,
        JsonTokenType.Number when reader.TryGetInt32(out var n) => n,
        _ => throw new JsonException("expected an integer"),
    };

    public override void Write(Utf8JsonWriter writer, int value, JsonSerializerOptions options) => writer.WriteNumberValue(value);
}
