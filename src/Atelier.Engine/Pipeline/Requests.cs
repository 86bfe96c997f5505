namespace Atelier.Engine.Pipeline;

/// <summary>One generation, in AUTOMATIC1111's terms and defaults.</summary>
public sealed record GenerationRequest
{
    public string Prompt { get; init; } = "";
    public string NegativePrompt { get; init; } = "";
    /// <summary>-1 picks a random seed (reported back).</summary>
    public long Seed { get; init; } = -1;
    public string Sampler { get; init; } = "Euler a";
    public string Schedule { get; init; } = "Automatic";
    public int Steps { get; init; } = 20;
    public double CfgScale { get; init; } = 7.0;
    public int Width { get; init; } = 512;
    public int Height { get; init; } = 512;
    public int BatchSize { get; init; } = 1;
    public int Iterations { get; init; } = 1;
    /// <summary>For img2img: the init image as RGB bytes with its size, and how much of it to noise away (0..1).</summary>
    public (byte[] Rgb, int Width, int Height)? InitImage { get; init; }
    public double DenoisingStrength { get; init; } = 0.75;
    /// <summary>A1111's variation seed (-1: random) and how much of its noise is blended in (0: none, 1: all of it).</summary>
    public long Subseed { get; init; } = -1;
    public double SubseedStrength { get; init; }
    /// <summary>A1111's <c>seed_resize_from_w/h</c>: the noise drawn at that size and pasted into the target's (0 or less: off).</summary>
    public int SeedResizeFromWidth { get; init; }
    public int SeedResizeFromHeight { get; init; }
    /// <summary>A1111's <c>eta_noise_seed_delta</c> (ENSD): the samplers' noise comes from seed + this (0: from the seed's own generator).</summary>
    public long EtaNoiseSeedDelta { get; init; }
    /// <summary>A1111's <c>randn_source</c>: <c>GPU</c> (its default) and <c>NV</c> draw as an NVIDIA GPU does, <c>CPU</c> as PyTorch's CPU generator.</summary>
    public string RandnSource { get; init; } = Sampling.NoiseSources.Gpu;
    /// <summary>
    /// A1111's <c>CLIP_stop_at_last_layers</c>: 1 is the text encoder's last layer; n takes the hidden state n − 1 layers
    /// before the end, through the final layer norm (a model whose text encoder does not show its layers keeps 1).
    /// </summary>
    public int ClipSkip { get; init; } = 1;
    /// <summary>Textual-inversion embeddings the prompts may name (A1111's <c>embeddings</c> folder): those whose names appear are used.</summary>
    public IReadOnlyList<Lora.NetworkFile> Embeddings { get; init; } = [];
    /// <summary>A1111's <c>sd_vae</c>: a VAE folder (<c>vae_decoder/model.onnx</c>, optionally <c>vae_encoder</c>) used in place of the model's own; null: the model's.</summary>
    public Lora.NetworkFile? Vae { get; init; }
    /// <summary>ONNX upscaler models (A1111's <c>models/ESRGAN</c>) the hires fix may name, beside the built-in upscalers.</summary>
    public IReadOnlyList<Lora.NetworkFile> Upscalers { get; init; } = [];
    /// <summary>A1111's hires fix (<c>enable_hr</c>) for txt2img; null: off.</summary>
    public HiresFix? Hires { get; init; }
    /// <summary>
    /// Inpainting (img2img with a mask), worked out by <see cref="Images.Inpainting"/>: its picture is the init
    /// image (<see cref="InitImage"/> is not read), only the masked latents change, and each finished picture is put back
    /// over the original (the images are <see cref="Images.InpaintPlan.OutputWidth"/>×<see cref="Images.InpaintPlan.OutputHeight"/>).
    /// </summary>
    public Images.InpaintPlan? Inpaint { get; init; }

    /// <summary>A1111's refiner (<c>refiner_checkpoint</c>, <c>refiner_switch_at</c>): another model that takes over the sampling part-way.</summary>
    public RefinerUse? Refiner { get; init; }

    /// <summary>A1111's "SD upscale" img2img script: <see cref="InitImage"/> is then the whole original picture, and the request's size the tile size.</summary>
    public Images.SdUpscaleScript? SdUpscale { get; init; }

    /// <summary>Infotext pairs a script adds (before <c>Version</c>, as A1111's <c>extra_generation_params</c>).</summary>
    public IReadOnlyList<KeyValuePair<string, object?>> ExtraInfo { get; init; } = [];
}

/// <summary>
/// A1111's hires fix: the first pass at the request's size, its latents (or its decoded picture) upscaled to
/// <see cref="Scale"/>× (or <see cref="ResizeX"/>×<see cref="ResizeY"/>, cropped to the first pass's aspect), then an
/// img2img pass of <see cref="SecondPassSteps"/> (0: the request's steps) at the request's denoising strength.
/// </summary>
public sealed record HiresFix
{
    public double Scale { get; init; } = 2;
    public int ResizeX { get; init; }
    public int ResizeY { get; init; }
    /// <summary><c>Latent</c>, <c>Latent (nearest)</c>, <c>Latent (nearest-exact)</c>, or a picture upscaler: <c>None</c>, <c>Lanczos</c>, <c>Nearest</c>.</summary>
    public string Upscaler { get; init; } = "Latent";
    public int SecondPassSteps { get; init; }
    /// <summary>The second pass's sampler and schedule (null or empty: the first pass's).</summary>
    public string? Sampler { get; init; }
    public string? Schedule { get; init; }
    /// <summary>The second pass's prompts (null or empty: the request's).</summary>
    public string? Prompt { get; init; }
    public string? NegativePrompt { get; init; }

    public static readonly string[] LatentUpscalers = ["Latent", "Latent (nearest)", "Latent (nearest-exact)"];
}

/// <summary>
/// Progress after a denoising step. <see cref="Latents"/> is the live latent buffer on the host (read it during the
/// callback only); when the latents stay on the device, it is null and <see cref="ReadLatents"/> copies them back (null
/// once the pass has ended), which only a preview should ask for.
/// </summary>
public sealed record GenerationProgress(int Image, int ImageCount, int Step, int Steps, TimeSpan Elapsed, TimeSpan Eta,
    float[]? Latents = null, int LatentWidth = 0, int LatentHeight = 0)
{
    public Func<float[]?>? ReadLatents { get; init; }

    /// <summary>A cheap preview: the latents projected to RGB by fixed factors (no VAE), as a small PNG.</summary>
    public byte[]? PreviewPng()
    {
        var latents = Latents ?? ReadLatents?.Invoke();
        if (latents is null || LatentWidth == 0)
        {
            return null;
        }

        // Approximate latent → RGB factors for SD 1.x latents (a linear fit widely used for live previews).
        float[,] f = { { 0.298f, 0.207f, 0.208f }, { 0.187f, 0.286f, 0.173f }, { -0.158f, 0.189f, 0.264f }, { -0.184f, -0.271f, -0.473f } };
        var plane = LatentWidth * LatentHeight;
        var rgb = new byte[plane * 3];
        for (var p = 0; p < plane; p++)
        {
            for (var ch = 0; ch < 3; ch++)
            {
                var v = 0f;
                for (var c = 0; c < 4; c++)
                {
                    v += latents[(c * plane) + p] * f[c, ch];
                }

                rgb[(p * 3) + ch] = (byte)Math.Clamp(((v + 1) / 2) * 255, 0, 255);
            }
        }

        return Images.Png.Encode(rgb, LatentWidth, LatentHeight);
    }
}

public sealed record GeneratedImage(byte[] Png, long Seed, string Infotext);

/// <remarks><see cref="Subseeds"/>: each image's variation seed (A1111's <c>all_subseeds</c>).</remarks>
public sealed record GenerationResult(IReadOnlyList<GeneratedImage> Images, long FirstSeed, IReadOnlyList<long> Seeds, string ModelHash, string ModelName,
    IReadOnlyList<long>? Subseeds = null)
{
    /// <summary>What the engine left out and why (a clip skip or embeddings the model cannot take, an embedding file that would not load).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>A request the engine cannot run as given (the message says what to change).</summary>
public sealed class EngineRequestException(string message) : ArgumentException(message);

/// <summary>
/// A refiner for a request: its pipeline (rented by the caller for the request's time), the fraction of the schedule
/// after which it takes over (A1111's <c>refiner_switch_at</c>: from the σ's nearest training timestep t, (999 − t)/1000),
/// and its title for the infotext ("name [hash]").
/// </summary>
public sealed record RefinerUse(DiffusionPipeline Pipeline, double SwitchAt, string Title);
