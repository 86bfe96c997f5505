namespace Atelier.Worker.Adapters;

/// <summary>One generation job as every engine adapter takes it.</summary>
public sealed record EngineJob
{
    /// <summary>The model: a name, a title, a short (10) or full SHA-256.</summary>
    public required string Model { get; init; }
    /// <summary>A fetched model's folder (the built-in engine loads it instead of looking <see cref="Model"/> up in its models folder).</summary>
    public ModelFolder? ModelFolder { get; init; }
    public string Prompt { get; init; } = "";
    public string NegativePrompt { get; init; } = "";
    public long Seed { get; init; } = -1;
    public string Sampler { get; init; } = "Euler";
    public string Schedule { get; init; } = "Automatic";
    public int Steps { get; init; } = 20;
    public double CfgScale { get; init; } = 7;
    public int Width { get; init; } = 512;
    public int Height { get; init; } = 512;
    public int BatchSize { get; init; } = 1;
    /// <summary>For img2img: the init image's bytes (PNG, JPEG or WebP).</summary>
    public byte[]? InitImagePng { get; init; }
    public double DenoisingStrength { get; init; } = 0.75;
    /// <summary>For img2img: A1111's <c>resize_mode</c> (0 just resize, 1 crop and resize, 2 resize and fill, 3 latent upscale).</summary>
    public int ResizeMode { get; init; }
    /// <summary>A1111's variation seed and strength, seed resize and ENSD (from <c>override_settings</c>, where the caller's stored options are too).</summary>
    public long Subseed { get; init; } = -1;
    public double SubseedStrength { get; init; }
    public int SeedResizeFromWidth { get; init; }
    public int SeedResizeFromHeight { get; init; }
    public long EtaNoiseSeedDelta { get; init; }
    /// <summary>A1111's <c>randn_source</c> (from <c>override_settings</c>): GPU (the default) and NV draw as an NVIDIA GPU does, CPU as PyTorch's CPU generator.</summary>
    public string RandnSource { get; init; } = Engine.Sampling.NoiseSources.Gpu;
    /// <summary>For inpainting: the mask's bytes (PNG, JPEG or WebP; white, or opaque where transparency is used, is generated) and A1111's inpainting fields.</summary>
    public byte[]? MaskPng { get; init; }
    public Engine.Images.InpaintSettings Inpaint { get; init; } = new();

    /// <summary>A1111's inpainting fields of a request, in the engine's terms (<c>mask_blur</c>, when given, is both blurs).</summary>
    public static Engine.Images.InpaintSettings InpaintOf(Contracts.A1111.A1111Request r) => new()
    {
        BlurX = r.MaskBlur ?? r.MaskBlurX, BlurY = r.MaskBlur ?? r.MaskBlurY, Round = r.MaskRound, Fill = r.InpaintingFill,
        FullRes = r.InpaintFullRes, Padding = r.InpaintFullResPadding, Invert = r.InpaintingMaskInvert != 0,
    };

    /// <summary>A1111's <c>sd_vae</c> (from <c>override_settings</c>): the built-in engine finds it in its models folder's <c>VAE</c>.</summary>
    public string? Vae { get; init; }

    /// <summary>A1111's <c>CLIP_stop_at_last_layers</c> (from <c>override_settings</c>, where the caller's stored options are too); 1 is the last layer.</summary>
    public int ClipSkip { get; init; } = 1;

    /// <summary>A <c>CLIP_stop_at_last_layers</c> value as A1111 takes it (a number, rounded; anything else: 1).</summary>
    public static int ClipSkipOf(System.Text.Json.JsonElement? value) =>
        value is { ValueKind: System.Text.Json.JsonValueKind.Number } v ? (int)Math.Clamp(Math.Round(v.GetDouble()), 1, 12) : 1;

    /// <summary>A1111's <c>n_iter</c> (<see cref="BatchSize"/> is batch_size × n_iter already; a script that tells them apart reads this).</summary>
    public int Iterations { get; init; } = 1;

    /// <summary>A1111's <c>script_name</c> and <c>script_args</c> (the built-in engine runs "SD upscale").</summary>
    public string? ScriptName { get; init; }
    public System.Text.Json.JsonElement? ScriptArgs { get; init; }

    /// <summary>The built-in engine's upscalers by A1111's list order (<c>/sdapi/v1/upscalers</c>): None, Lanczos, Nearest, then the models.</summary>
    public static IReadOnlyList<string> UpscalerNames(IReadOnlyList<Engine.Lora.NetworkFile> models) => [.. Engine.Images.Upscaling.Upscalers, .. models.Select(m => m.Name)];

    /// <summary>A1111's refiner: <c>refiner_checkpoint</c> (a model the engine has; "None" or empty: none) and <c>refiner_switch_at</c>.</summary>
    public string? RefinerCheckpoint { get; init; }
    public double RefinerSwitchAt { get; init; }

    /// <summary>The refiner an A1111 request names (null for none, "None" or empty) and its switch (0 when not given: A1111 switches at once).</summary>
    public static (string? Checkpoint, double SwitchAt) RefinerOf(IReadOnlyDictionary<string, System.Text.Json.JsonElement>? extra)
    {
        var name = extra?.TryGetValue("refiner_checkpoint", out var c) == true && c.ValueKind == System.Text.Json.JsonValueKind.String ? c.GetString()!.Trim() : null;
        var at = extra?.TryGetValue("refiner_switch_at", out var s) == true && s.ValueKind == System.Text.Json.JsonValueKind.Number ? s.GetDouble() : 0;
        return (name is null or "" || string.Equals(name, "None", StringComparison.OrdinalIgnoreCase) ? null : name, at);
    }

    /// <summary>A1111's hires fix (txt2img with <c>enable_hr</c>); null: none.</summary>
    public Engine.Pipeline.HiresFix? Hires { get; init; }

    /// <summary>The hires fix an A1111 request asks for (txt2img with <c>enable_hr</c>), in the engine's terms; null when none.</summary>
    public static Engine.Pipeline.HiresFix? HiresOf(Contracts.A1111.A1111Request r) => r.EnableHr && r.InitImages is not { Count: > 0 }
        ? new Engine.Pipeline.HiresFix
        {
            Scale = r.HrScale, ResizeX = r.HrResizeX, ResizeY = r.HrResizeY, Upscaler = string.IsNullOrEmpty(r.HrUpscaler) ? "Latent" : r.HrUpscaler,
            SecondPassSteps = r.HrSecondPassSteps, Sampler = r.HrSamplerName, Schedule = r.HrScheduler, Prompt = r.HrPrompt, NegativePrompt = r.HrNegativePrompt,
        }
        : null;
    /// <summary>
    /// The caller's whole request as it was queued (A1111's body, every field), for adapters that pass it on: the A1111
    /// adapter forwards what it does not set itself (<c>alwayson_scripts</c>, <c>script_name</c>/<c>script_args</c>,
    /// <c>override_settings</c>, hires fix, …). Null when the job has no such body.
    /// </summary>
    public System.Text.Json.JsonElement? Request { get; init; }

    /// <summary>LoRA files fetched for the job (the tenant's LoRAs its prompt names), by name; the built-in engine also reads its models folder's <c>Lora</c>.</summary>
    public IReadOnlyList<Engine.Lora.NetworkFile> Loras { get; init; } = [];

    /// <summary>Textual-inversion embeddings fetched for the job (the tenant's its prompts name); the built-in engine also reads its models folder's <c>embeddings</c>.</summary>
    public IReadOnlyList<Engine.Lora.NetworkFile> Embeddings { get; init; } = [];

    /// <summary>Our own id for the job, used as the engine's task or prompt id where it has one.</summary>
    public string JobId { get; init; } = Guid.NewGuid().ToString("N");
}
