using System.Diagnostics;
using System.Text.Json;
using Atelier.Engine.Images;
using Atelier.Engine.Lora;
using Atelier.Engine.Sampling;
using Atelier.Engine.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Atelier.Engine.Pipeline;

/// <summary>
/// A Stable Diffusion pipeline on ONNX Runtime over a diffusers ONNX folder: CLIP tokenizer with emphasis → text
/// encoder → sampler loop over the UNet with classifier-free guidance → VAE decoder → PNG with the A1111
/// "parameters" chunk. Inputs are bound by name with element types read from the session metadata.
/// </summary>
public sealed partial class DiffusionPipeline : SharedNative
{
    private readonly InferenceSession _textEncoder;
    private readonly InferenceSession _unet;
    private readonly Vae _vae;
    private readonly ClipTokenizer _tokenizer;
    private readonly NoiseSchedule _schedule;
    private readonly TensorElementType _timestepType;
    private readonly TensorElementType _unetType;
    private readonly TensorElementType _statesType;
    private readonly bool _ioBinding;
    private readonly LatentGraphs? _latentGraphs;
    private readonly OrtMemoryInfo? _deviceMemory;
    private readonly OrtAllocator? _deviceAllocator;
    private long _readbacks;
    private long _deviceSteps;
    private int _hiddenWidth = 768;

    private DiffusionPipeline(string folder, SessionOptions options, string name, string hash, bool ioBinding, EngineDevice? latentsDevice,
        DeviceSettings settings, LoraPatch? textPatch, LoraPatch? unetPatch, LoraPatch? text2Patch = null, IReadOnlyList<string>? unhandledLora = null)
    {
        _ioBinding = ioBinding;
        Name = name;
        Hash = hash;
        _unmatchedLora = [.. new[] { textPatch, text2Patch, unetPatch }.OfType<LoraPatch>().SelectMany(p => p.Unmatched), .. unhandledLora ?? []];
        // An SDXL refiner has the second text encoder (and its tokenizer) alone.
        var refiner = IsRefinerFolder(folder);
        _textEncoderPath = Path.Combine(folder, refiner ? "text_encoder_2" : "text_encoder", "model.onnx");
        _settings = settings;
        _textPatch = textPatch;
        try
        {
            _textEncoder = Open(_textEncoderPath, options, settings, textPatch);
            _unet = Open(Path.Combine(folder, "unet", "model.onnx"), options, settings, unetPatch);
            _vae = new Vae(folder, options, Vae.ScalingFactor(folder));
            _tokenizer = ClipTokenizer.Load(Path.Combine(folder, refiner && !Directory.Exists(Path.Combine(folder, "tokenizer")) ? "tokenizer_2" : "tokenizer"));
            _timestepType = _unet.InputMetadata["timestep"].ElementDataType;
            _unetType = _unet.InputMetadata["sample"].ElementDataType;
            _statesType = _unet.InputMetadata["encoder_hidden_states"].ElementDataType;
            OpenXl(folder, options, refiner, text2Patch);
            using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "scheduler", "scheduler_config.json")));
            var root = config.RootElement;
            _schedule = new NoiseSchedule(
                root.TryGetProperty("num_train_timesteps", out var n) ? n.GetInt32() : 1000,
                root.TryGetProperty("beta_start", out var bs) ? bs.GetDouble() : 0.00085,
                root.TryGetProperty("beta_end", out var be) ? be.GetDouble() : 0.012);
            if (latentsDevice is { } device)
            {
                _latentGraphs = new LatentGraphs(options, _unetType);
                if (device.IsCuda)
                {
                    _deviceMemory = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, device.Ordinal, OrtMemType.Default);
                    _deviceAllocator = new OrtAllocator(_unet, _deviceMemory);
                }
            }
        }
        catch
        {
            // A model that does not load frees what it had opened (sessions hold device memory).
            _latentGraphs?.Dispose();
            _deviceAllocator?.Dispose();
            _deviceMemory?.Dispose();
            if (!ReferenceEquals(_textEncoder2, _textEncoder))
            {
                _textEncoder2?.Dispose();
            }

            _vae?.Dispose();
            _unet?.Dispose();
            _textEncoder?.Dispose();
            throw;
        }
    }

    private readonly string[] _unmatchedLora;
    private readonly LoraPatch? _textPatch;
    private readonly string _textEncoderPath;
    private readonly DeviceSettings _settings;
    private readonly Lock _variantGate = new();
    private readonly LinkedList<(string Key, TextEncoderVariant? Variant, string? Why)> _variants = new();

    /// <summary>How many text encoder variants (clip skip, embedding sets) a pipeline keeps open; the least recently used goes first.</summary>
    private const int MaxVariants = 4;

    /// <summary>
    /// The text encoder variant for clip skip (<paramref name="layers"/>) and these embeddings, opened on first use with
    /// the LoRAs merged as in the plain session, entered (the caller exits it); null with the reason when the model
    /// does not show what it needs.
    /// </summary>
    private (TextEncoderVariant? Variant, string? Why) Variant(bool layers, IReadOnlyList<(Embedding Embedding, IReadOnlyList<int> NameIds)> embeddings)
    {
        var key = $"{layers}|{string.Join("|", embeddings.Select(e => e.Embedding.Path))}";
        lock (_variantGate)
        {
            for (var node = _variants.First; node is not null; node = node.Next)
            {
                if (node.Value.Key == key)
                {
                    _variants.Remove(node);
                    _variants.AddFirst(node);
                    return node.Value.Variant is { } found && found.TryEnter() ? (found, null) : (null, node.Value.Why);
                }
            }

            using var options = ExecutionProviders.SessionOptionsFor(_settings);
            var (variant, why) = TextEncoderVariant.Open(_textEncoderPath, options, _textEncoder.OutputMetadata["last_hidden_state"].ElementDataType, layers, embeddings,
                _textPatch?.Initializers);
            _variants.AddFirst((key, variant, why));
            while (_variants.Count > MaxVariants)
            {
                _variants.Last!.Value.Variant?.Dispose(); // freed once its last user exits
                _variants.RemoveLast();
            }

            return variant is not null && variant.TryEnter() ? (variant, null) : (null, why);
        }
    }

    private readonly LinkedList<(string Folder, Vae Vae)> _vaes = new();

    /// <summary>
    /// The VAE of a folder (A1111's <c>sd_vae</c>), opened on first use and entered (the caller exits it); at most two
    /// kept besides the model's own, the least recently used dropped (freed once its last user exits).
    /// </summary>
    private Vae VaeFor(NetworkFile chosen)
    {
        lock (_variantGate)
        {
            for (var node = _vaes.First; node is not null; node = node.Next)
            {
                if (node.Value.Folder == chosen.Path)
                {
                    _vaes.Remove(node);
                    _vaes.AddFirst(node);
                    return node.Value.Vae.TryEnter() ? node.Value.Vae : throw new ObjectDisposedException(nameof(Vae));
                }
            }

            using var options = ExecutionProviders.SessionOptionsFor(_settings);
            var vae = new Vae(chosen.Path, options, _vae.LatentScale);
            _vaes.AddFirst((chosen.Path, vae));
            while (_vaes.Count > 2)
            {
                _vaes.Last!.Value.Vae.Dispose(); // freed once its last user exits
                _vaes.RemoveLast();
            }

            vae.TryEnter();
            return vae;
        }
    }

    /// <summary>Ends a request's use of its VAE.</summary>
    private readonly struct VaeUse(Vae vae) : IDisposable
    {
        public void Dispose() => vae.Exit();
    }

    /// <summary>Why this model cannot honour A1111's <c>CLIP_stop_at_last_layers</c> above 1, or null when it can (the variant is opened to find out).</summary>
    public string? ClipSkipUnsupported
    {
        get
        {
            var (variant, why) = Variant(true, []);
            variant?.Exit();
            return why;
        }
    }

    /// <summary>
    /// A session with the shared options, or, for a model with LoRAs merged, a session of a copy of the model with the
    /// merged weights written in (external data files, if the model has them, are still read from its folder).
    /// </summary>
    private static InferenceSession Open(string path, SessionOptions shared, DeviceSettings settings, LoraPatch? patch)
    {
        if (patch is null)
        {
            return new InferenceSession(path, shared);
        }

        using var own = ExecutionProviders.SessionOptionsFor(settings);
        own.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", Path.GetDirectoryName(Path.GetFullPath(path))!);
        return new InferenceSession(Onnx.OnnxGraph.WithInitializers(File.ReadAllBytes(path), patch.Initializers), own);
    }

    /// <summary>The LoRAs merged into this pipeline's weights (empty for the model as it is).</summary>
    public IReadOnlyList<LoraUse> Loras { get; private init; } = [];

    /// <summary>A1111's "Lora hashes" infotext value: each LoRA's name and the first 12 hex digits of its file's SHA-256.</summary>
    public string? LoraHashes { get; private init; }

    /// <summary>A1111's short network hash: the first 12 hex digits of the file's SHA-256 (hashed once per file version).</summary>
    private static string FileHash(string path) => ModelEntry.HashOf(path)[..12];

    /// <summary>LoRA modules that matched no weight of the text encoder or the UNet (their keys), so were not applied.</summary>
    public IReadOnlyList<string> UnmatchedLoraModules => _unmatchedLora;

    /// <summary>Whether samplers with a linear plan keep the latents on the device between steps (on CUDA by default).</summary>
    public bool LatentsOnDevice => _latentGraphs is not null;

    /// <summary>How many times latents kept on the device were copied back to the host: once per sampling pass, plus previews.</summary>
    public long LatentReadbacks => Interlocked.Read(ref _readbacks);

    /// <summary>How many sampling steps ran with the latents on the device.</summary>
    public long DeviceSteps => Interlocked.Read(ref _deviceSteps);

    public string Name { get; }
    public string Hash { get; }

    /// <summary>"CUDA" when the sessions run on the CUDA execution provider, else "CPU".</summary>
    public string ExecutionProvider { get; private init; } = "CPU";

    /// <summary>The device the sessions run on.</summary>
    public EngineDevice Device { get; private init; } = EngineDevice.Cpu;

    /// <summary>"fp16" when the UNet takes float16 tensors (an fp16 export), else "fp32". The sampler's arithmetic is fp32 either way.</summary>
    public string Precision => _unetType == TensorElementType.Float16 ? "fp16" : "fp32";

    /// <summary>
    /// Loads a folder onto the device that <paramref name="device"/> names (the CPU by default). The device should have
    /// been started with <see cref="ExecutionProviders.Start"/>, which says whether it can run; here a CUDA provider
    /// that cannot be appended is an error, not a silent fallback.
    /// </summary>
    /// <remarks>
    /// With <paramref name="loras"/>, their weights are merged into the text encoder's and the UNet's (A1111's default
    /// way of applying them), computed once here: a pipeline is one model with one set of LoRAs at their multipliers.
    /// </remarks>
    public static DiffusionPipeline Load(string folder, string name, string hash, DeviceSettings? device = null, IReadOnlyList<LoraUse>? loras = null)
    {
        var settings = device ?? DeviceSettings.Default;
        using var options = ExecutionProviders.SessionOptionsFor(settings);
        LoraPatch? text = null, unet = null, text2 = null;
        List<string> unhandled = [];
        if (loras is { Count: > 0 })
        {
            var files = loras.Select(l => (File: SafeTensors.Open(l.Path), Use: l)).ToList();
            // kohya's prefixes: lora_te_ for SD 1.x/2.x's text encoder, lora_te1_ and lora_te2_ for SDXL's two.
            var (refiner, xl) = (IsRefinerFolder(folder), File.Exists(Path.Combine(folder, "text_encoder_2", "model.onnx")));
            string[] prefixes = refiner ? ["lora_unet_", "lora_te2_"] : xl ? ["lora_unet_", "lora_te1_", "lora_te2_"] : ["lora_unet_", "lora_te_"];
            LoraPatch? Patch(string encoder, string prefix) => prefixes.Contains(prefix)
                ? LoraPatch.Compute(Path.Combine(folder, encoder, "model.onnx"), prefix, files.Select(f => (f.File, f.Use.TextWeight))) : null;
            text = refiner ? Patch("text_encoder_2", "lora_te2_") : Patch("text_encoder", xl ? "lora_te1_" : "lora_te_");
            text2 = refiner ? null : Patch("text_encoder_2", "lora_te2_");
            unet = LoraPatch.Compute(Path.Combine(folder, "unet", "model.onnx"), "lora_unet_", files.Select(f => (f.File, f.Use.UnetWeight)));
            // Modules for parts this model does not have (an SDXL LoRA's lora_te1_ on an SD 1.x model) are reported, not dropped.
            unhandled = [.. files.SelectMany(f => f.File.Tensors.Keys).Where(k => k.EndsWith(".lora_down.weight", StringComparison.Ordinal)
                && !prefixes.Any(p => k.StartsWith(p, StringComparison.Ordinal))).Select(k => k[..^".lora_down.weight".Length]).Distinct()];
        }

        return new DiffusionPipeline(folder, options, name, hash, settings.IoBinding ?? settings.Device.IsCuda,
            settings.LatentsOnDevice ?? settings.Device.IsCuda ? settings.Device : null, settings, text, unet, text2, unhandled)
        {
            ExecutionProvider = settings.Device.IsCuda ? "CUDA" : "CPU",
            Device = settings.Device,
            Loras = loras ?? [],
            LoraHashes = loras is { Count: > 0 } ? string.Join(", ", loras.Select(l => $"{l.Name}: {FileHash(l.Path)}")) : null,
        };
    }

    /// <summary>Runs one request: every image of every batch, with progress after each step.</summary>
    /// <param name="req">The request, in A1111 terms.</param>
    /// <param name="progress">Told after each denoising step.</param>
    /// <param name="ct">Cancels the whole request, promptly (the running ONNX call is terminated).</param>
    /// <param name="skipRequested">Polled after each step: true ends the current image early (it is decoded as it stands), as A1111's skip does.</param>
    /// <summary>
    /// Generates the request's images. Safe against <see cref="SharedNative.Dispose"/> on another thread: the native sessions are
    /// freed only when the last generation using them has returned (freeing them under a running <c>Run</c> crashes
    /// the process). A cancellation that stops ONNX Runtime midway surfaces as <see cref="OperationCanceledException"/>.
    /// </summary>
    public GenerationResult Generate(GenerationRequest req, Action<GenerationProgress>? progress, CancellationToken ct, Func<bool>? skipRequested = null)
    {
        if (req.SdUpscale is { } script)
        {
            return script.Run(this, req, progress, ct, skipRequested);
        }

        ObjectDisposedException.ThrowIf(!TryEnter(), this);
        try
        {
            return GenerateCore(req, progress, skipRequested, ct);
        }
        catch (OnnxRuntimeException) when (ct.IsCancellationRequested)
        {
            // The terminate flag stopped a call midway (the UNet or the VAE): a cancellation, not an engine failure.
            throw new OperationCanceledException(ct);
        }
        finally
        {
            Exit();
        }
    }

    private GenerationResult GenerateCore(GenerationRequest req, Action<GenerationProgress>? progress, Func<bool>? skipRequested, CancellationToken ct)
    {
        Validate(req);
        var samplerName = req.Sampler;
        var schedule = req.Schedule;
        var (baseName, legacy) = Sampler.SplitLegacy(samplerName);
        var sampler = Sampler.Find(baseName) ?? throw new EngineRequestException("Sampler not found");
        schedule = Schedules.Canonical(legacy ?? schedule) ?? throw new EngineRequestException($"Scheduler not found: {legacy ?? schedule}");

        var firstSeed = req.Seed == -1 ? Random.Shared.NextInt64(0, uint.MaxValue) : req.Seed;
        var firstSubseed = req.Subseed == -1 ? Random.Shared.NextInt64(0, uint.MaxValue) : req.Subseed;
        var variation = req.SubseedStrength != 0;
        var subseeds = new List<long>();
        var generators = NoiseSources.For(req.RandnSource);
        using var text = PlanText(req.ClipSkip, req.Embeddings, req.Prompt, req.NegativePrompt, req.Hires?.Prompt ?? "", req.Hires?.NegativePrompt ?? "");
        var conditioning = EncodePrompts(req.Prompt, req.NegativePrompt, text);
        var latentH = req.Height / 8;
        var latentW = req.Width / 8;
        var perImage = 4 * latentH * latentW;
        var allSigmas = sampler.SigmasFor(schedule, _schedule, req.Steps);
        var inpaint = req.Inpaint;
        // A1111's sd_vae: the chosen VAE decodes (and encodes) in place of the model's own.
        var vae = req.Vae is { } chosen ? VaeFor(chosen) : _vae.TryEnter() ? _vae : throw new ObjectDisposedException(nameof(DiffusionPipeline));
        using var vaeUse = new VaeUse(vae);
        // A chosen VAE without an encoder decodes only; the model's own encodes.
        var encoder = vae.CanEncode ? vae : _vae;
        var init = inpaint is not null ? encoder.Encode((inpaint.InitRgb, req.Width, req.Height), req.Width, req.Height)
            : req.InitImage is { } image ? encoder.Encode(image, req.Width, req.Height) : null;
        // Inpainting: A1111's nmask (1 where the picture is generated), the same for the four latent channels.
        var generate = inpaint is null ? null : new float[perImage];
        if (generate is not null)
        {
            for (var c = 0; c < 4; c++)
            {
                inpaint!.LatentMask.CopyTo(generate, c * latentH * latentW);
            }
        }

        var imageInit = init is null ? null : new float[perImage];
        // img2img as A1111 (k-diffusion's sample_img2img): t_enc = int(min(strength, 0.999) × steps) steps + 1, from the schedule's end.
        var sigmas = init is null ? allSigmas : sampler.Img2ImgSigmas(allSigmas, _schedule, req.Steps, (int)(Math.Min(req.DenoisingStrength, 0.999) * req.Steps));
        var hires = init is null && req.Hires is { } hr ? PlanHires(req, hr, sampler, schedule) : null;
        var stepsPerImage = sampler.StepsOver(sigmas) + (hires is null || hires.Sigmas.Length < 2 ? 0 : hires.Sampler.StepsOver(hires.Sigmas));
        var total = req.BatchSize * req.Iterations;
        var images = new List<GeneratedImage>(total);
        var seeds = new List<long>(total);
        var watch = Stopwatch.StartNew();
        using var runOptions = new RunOptions();
        using var cancel = ct.Register(() => runOptions.Terminate = true);
        var latents = new float[perImage];
        using var io = new UnetBindings(this, conditioning, req.CfgScale != 1.0, latentH, latentW);
        using var hiresIo = hires is null ? null
            : new UnetBindings(this, hires.Prompted ? EncodePrompts(hires.Prompt, hires.NegativePrompt, text) : conditioning, req.CfgScale != 1.0, hires.LatentHeight, hires.LatentWidth);
        // A1111's refiner: the pass it joins (the hires pass when there is one, its hires_fix_refiner_pass default), with
        // its own conditioning of the same prompts (for the hires pass, the hires prompts).
        var refiner = req.Refiner;
        using var refinerText = refiner is null ? null : new TextPlan(null, 1);
        using var refinerIo = refiner is null ? null
            : hires is null ? new UnetBindings(refiner.Pipeline, refiner.Pipeline.EncodePrompts(req.Prompt, req.NegativePrompt, refinerText!), req.CfgScale != 1.0, latentH, latentW)
            : new UnetBindings(refiner.Pipeline, refiner.Pipeline.EncodePrompts(hires.Prompt, hires.NegativePrompt, refinerText!), req.CfgScale != 1.0, hires.LatentHeight, hires.LatentWidth);
        var refined = false;
        for (var index = 0; index < total; index++)
        {
            // As A1111: with a variation strength every image keeps the seed and the variation seeds count up instead.
            var seed = variation ? firstSeed : firstSeed + index;
            var subseed = firstSubseed + index;
            seeds.Add(seed);
            subseeds.Add(subseed);
            // The seed's noise as A1111 draws it with its randn_source: the initial latent, then each ancestral step's.
            var rng = SeedNoise.First(latents, latentH, latentW, seed, subseed, req.SubseedStrength, req.SeedResizeFromWidth, req.SeedResizeFromHeight,
                sampler.UsesEnsd ? req.EtaNoiseSeedDelta : 0, generators);
            var sigma0 = sigmas[0];
            if (init is not null)
            {
                // What the latents start from (and, inpainting, what the unmasked part is held to): the init's, with
                // A1111's latent noise (the seed's noise) or latent nothing (zero) where the mask is.
                for (var i = 0; i < perImage; i++)
                {
                    imageInit![i] = generate is null ? init[i] : inpaint!.Settings.Fill switch
                    {
                        InpaintSettings.FillLatentNoise => (init[i] * (1 - generate[i])) + (latents[i] * generate[i]),
                        InpaintSettings.FillLatentNothing => init[i] * (1 - generate[i]),
                        _ => init[i],
                    };
                }
            }

            for (var i = 0; i < perImage; i++)
            {
                latents[i] = init is null ? (float)(latents[i] * (sampler.StartsFromUnitNoise ? Math.Sqrt((sigma0 * sigma0) + 1) : sigma0)) : imageInit![i] + (float)(latents[i] * sigma0);
            }

            var imageNumber = index;
            refined = false;
            using var skip = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var finished = Sample(latents, sigmas, sampler, io, rng, latentW, latentH, 0, hires is null ? refinerIo : null);
            var (outW, outH, final) = (latentW, latentH, latents);
            if (hires is not null && finished)
            {
                // The second pass: upscaled, noised again by the seed's noise at the new size, sampled from part-way.
                var upscaled = Upscale(hires, latents, latentW, latentH, runOptions, req.Upscalers, vae, encoder);
                var noise = new float[upscaled.Length];
                var hiresSampler = hires.Sampler;
                var hiresRng = SeedNoise.First(noise, hires.LatentHeight, hires.LatentWidth, seed, subseed, req.SubseedStrength, req.SeedResizeFromWidth,
                    req.SeedResizeFromHeight, hiresSampler.UsesEnsd ? req.EtaNoiseSeedDelta : 0, generators);
                if (hires.Sigmas.Length > 1)
                {
                    var first = hires.Sigmas[0];
                    for (var i = 0; i < upscaled.Length; i++)
                    {
                        upscaled[i] += (float)(noise[i] * first);
                    }

                    Sample(upscaled, hires.Sigmas, hiresSampler, hiresIo!, hiresRng, hires.LatentWidth, hires.LatentHeight, sampler.StepsOver(sigmas), refinerIo);
                }

                (outW, outH, final) = (hires.LatentWidth, hires.LatentHeight, upscaled);
            }

            if (generate is not null)
            {
                // As A1111 after sampling: the unmasked latents are the init's exactly.
                for (var i = 0; i < perImage; i++)
                {
                    final[i] = (final[i] * generate[i]) + (imageInit![i] * (1 - generate[i]));
                }
            }

            var rgb = vae.Decode(final, outH, outW, runOptions);
            var (pictureW, pictureH) = (outW * 8, outH * 8);
            if (inpaint is not null)
            {
                rgb = inpaint.Composite(rgb, pictureW, pictureH);
                (pictureW, pictureH) = (inpaint.OutputWidth, inpaint.OutputHeight);
            }

            var info = Infotext.Format(req.Prompt, req.NegativePrompt, InfoParameters(req, sampler, schedule, seed, subseed, hires, text, refined ? refiner : null));
            images.Add(new GeneratedImage(Png.Encode(rgb, pictureW, pictureH, new Dictionary<string, string> { ["parameters"] = info }), seed, info));

            // One sampling pass over x; false when the image was skipped (what there is is kept, brought to sigma 0's scale).
            bool Sample(float[] x, double[] passSigmas, Sampler passSampler, UnetBindings passIo, INoiseGenerator noiseSource, int lw, int lh, int stepsBefore,
                UnetBindings? passRefiner)
            {
                var lastStep = passSigmas.Length - 2;
                var completed = true;
                // Inpainting blends every prediction with the init's latents on the host, so it keeps the host loop.
                // Inpainting and a refiner's switch keep the host loop too.
                var plan = _latentGraphs is null || generate is not null || passRefiner is not null ? null : passSampler.LinearPlan(passSigmas);
                using var device = plan is null ? null : new DeviceLatentsPass(_latentGraphs!, _unet, _deviceAllocator ?? OrtAllocator.DefaultInstance, _unetType,
                    passIo.States, passIo.Timestep, passIo.Guided, lh, lw, runOptions, passIo.Extra) { OnReadback = () => Interlocked.Increment(ref _readbacks) };
                Func<float[]?>? snapshot = device is null ? null : device.Snapshot;
                try
                {
                    Action<int> onStep = step =>
                    {
                        var done = (imageNumber * stepsPerImage) + stepsBefore + step + 1;
                        var all = total * stepsPerImage;
                        var eta = TimeSpan.FromTicks(watch.Elapsed.Ticks / done * (all - done));
                        progress?.Invoke(new GenerationProgress(imageNumber, total, stepsBefore + step + 1, stepsPerImage, watch.Elapsed, eta,
                            device is null ? x : null, lw, lh) { ReadLatents = snapshot });
                        lastStep = step;
                        if (skipRequested?.Invoke() == true)
                        {
                            skip.Cancel();
                        }
                    };
                    if (device is not null)
                    {
                        device.Run(x, plan!, req.CfgScale, sigma => passIo.SetTimestep(_schedule.TimestepOf(sigma)), noiseSource.Fill,
                            CIn, step =>
                            {
                                Interlocked.Increment(ref _deviceSteps);
                                onStep(step);
                            }, skip.Token);
                    }
                    else
                    {
                        passSampler.RunGuided(x, passSigmas, (xs, sigma, step, eps, uncond) =>
                        {
                            // A1111's apply_refiner: the refiner takes over once (999 − the σ's nearest timestep)/1000 reaches the switch.
                            refined |= passRefiner is not null && (999 - _schedule.NearestTimestep(sigma)) / 1000.0 >= refiner!.SwitchAt;
                            var (callIo, callUnet) = refined && passRefiner is not null ? (passRefiner, refiner!.Pipeline._unet) : (passIo, _unet);
                            Denoise(xs, sigma, req.CfgScale * passSampler.GuidanceScaleFactor, callIo, eps, runOptions, ct, passSampler.NeedsUnconditional ? uncond : default, callUnet);
                            if (generate is not null && sigma > 0)
                            {
                                HoldUnmasked(xs, sigma, eps, imageInit!, generate);
                            }
                        }, noiseSource.Fill, onStep, skip.Token);
                    }
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    completed = false; // skipped: decode what there is
                }

                // A finished pass ends at σ = 0; a skipped one where its last step went (clamped: Restart takes more steps than σs).
                var last = completed ? 0 : passSampler.SigmaAfterStep(passSigmas, lastStep);
                if (last > 0)
                {
                    var scale = (float)(1 / Math.Sqrt((last * last) + 1));
                    for (var i = 0; i < x.Length; i++)
                    {
                        x[i] *= scale;
                    }
                }

                return completed;
            }
        }

        return new GenerationResult(images, firstSeed, seeds, Hash, Name, subseeds) { Warnings = text.Notes };
    }

    /// <summary>The infotext pairs in A1111's order (a pair with a null value is left out).</summary>
    private IEnumerable<KeyValuePair<string, object?>> InfoParameters(GenerationRequest req, Sampler sampler, string schedule, long seed, long subseed,
        HiresPlan? hires = null, TextPlan? text = null, RefinerUse? refiner = null) =>
    [
        new("Steps", req.Steps), new("Sampler", sampler.Name), new("Schedule type", schedule), new("CFG scale", req.CfgScale),
        new("Seed", seed), new("Size", $"{req.Width}x{req.Height}"), new("Model hash", Hash), new("Model", Name),
        new("VAE hash", req.Vae is { } vae ? FileHash(Path.Combine(vae.Path, "vae_decoder", "model.onnx"))[..10] : null),
        new("VAE", req.Vae?.Name),
        new("Variation seed", req.SubseedStrength == 0 ? null : subseed),
        new("Variation seed strength", req.SubseedStrength == 0 ? null : req.SubseedStrength),
        new("Seed resize from", req.SeedResizeFromWidth > 0 && req.SeedResizeFromHeight > 0 ? $"{req.SeedResizeFromWidth}x{req.SeedResizeFromHeight}" : null),
        new("Denoising strength", req.InitImage is null && req.Inpaint is null && hires is null ? null : req.DenoisingStrength),
        new("Clip skip", text?.ClipSkip is > 1 ? text.ClipSkip : null),
        new("ENSD", req.EtaNoiseSeedDelta != 0 && sampler.UsesEnsd ? req.EtaNoiseSeedDelta : null),
        new("RNG", string.Equals(req.RandnSource, NoiseSources.Gpu, StringComparison.OrdinalIgnoreCase) ? null : req.RandnSource.ToUpperInvariant()),
        new("Hires upscale", hires is { Fix: { ResizeX: 0, ResizeY: 0 } } ? hires.Fix.Scale : null),
        new("Hires resize", hires is { Fix: { ResizeX: > 0 } or { ResizeY: > 0 } } ? $"{hires.Fix.ResizeX}x{hires.Fix.ResizeY}" : null),
        new("Hires steps", hires is { Fix.SecondPassSteps: > 0 } ? hires.Fix.SecondPassSteps : null),
        new("Hires upscaler", hires?.Upscaler),
        new("Hires sampler", hires is not null && hires.Sampler.Name != sampler.Name ? hires.Sampler.Name : null),
        new("Hires schedule type", hires is not null && hires.Schedule != schedule ? hires.Schedule : null),
        new("Hires prompt", hires is { Prompted: true } && hires.Prompt != req.Prompt ? hires.Prompt : null),
        new("Hires negative prompt", hires is { Prompted: true } && hires.NegativePrompt != req.NegativePrompt ? hires.NegativePrompt : null),
        new("TI hashes", text?.EmbeddingHashes),
        new("Lora hashes", LoraHashes),
        .. req.Inpaint?.InfoParameters() ?? [],
        .. req.ExtraInfo,
        new("Refiner", refiner?.Title),
        new("Refiner switch at", refiner?.SwitchAt),
        new("Version", "atelier"),
    ];

    /// <summary>
    /// A1111's inpainting blend of each prediction (its CFG denoiser's <c>apply_blend</c> after the model): the denoised
    /// latents x₀ = x − σε are the init's where the mask keeps them, written back as the noise prediction that gives
    /// that x₀: ε' = m·(x − init)/σ + (1 − m)·ε, m the kept fraction.
    /// </summary>
    private static void HoldUnmasked(ReadOnlySpan<float> x, double sigma, Span<float> eps, float[] init, float[] generate)
    {
        var inv = (float)(1 / sigma);
        for (var i = 0; i < eps.Length; i++)
        {
            var keep = 1 - generate[i];
            eps[i] = (keep * (x[i] - init[i]) * inv) + (generate[i] * eps[i]);
        }
    }

    /// <summary>A hires fix worked out: the size it upscales to (and crops), its second pass's sampler, schedule and sigmas.</summary>
    public sealed record HiresPlan(HiresFix Fix, string Upscaler, int UpscaleWidth, int UpscaleHeight, int TruncateX, int TruncateY,
        Sampler Sampler, string Schedule, double[] Sigmas, bool Prompted, string Prompt, string NegativePrompt)
    {
        /// <summary>The latents' size after the crop (the picture is 8× this).</summary>
        public int LatentWidth => (UpscaleWidth / 8) - TruncateX;
        public int LatentHeight => (UpscaleHeight / 8) - TruncateY;
    }

    /// <summary>A1111's hires sizes (scale, or resize to a size with the first pass's aspect and a centred crop) and its second pass's schedule.</summary>
    private HiresPlan PlanHires(GenerationRequest req, HiresFix fix, Sampler sampler, string schedule)
    {
        int x, y, truncX = 0, truncY = 0;
        if (fix.ResizeX <= 0 && fix.ResizeY <= 0)
        {
            if (fix.Scale is < 1 or > 8)
            {
                throw new EngineRequestException("hr_scale must be between 1 and 8");
            }

            (x, y) = ((int)(req.Width * fix.Scale), (int)(req.Height * fix.Scale));
        }
        else if (fix.ResizeY <= 0)
        {
            (x, y) = (fix.ResizeX, fix.ResizeX * req.Height / req.Width);
        }
        else if (fix.ResizeX <= 0)
        {
            (x, y) = (fix.ResizeY * req.Width / req.Height, fix.ResizeY);
        }
        else
        {
            (x, y) = (double)req.Width / req.Height < (double)fix.ResizeX / fix.ResizeY
                ? (fix.ResizeX, fix.ResizeX * req.Height / req.Width)
                : (fix.ResizeY * req.Width / req.Height, fix.ResizeY);
            (truncX, truncY) = ((x - fix.ResizeX) / 8, (y - fix.ResizeY) / 8);
        }

        if (x is < 64 or > 4096 || y is < 64 or > 4096)
        {
            throw new EngineRequestException($"the hires fix's size must be between 64 and 4096 a side (got {x}x{y})");
        }

        var upscaler = HiresFix.LatentUpscalers.FirstOrDefault(u => string.Equals(u, fix.Upscaler, StringComparison.OrdinalIgnoreCase))
                       ?? Images.Upscaling.Upscalers.FirstOrDefault(u => string.Equals(u, fix.Upscaler, StringComparison.OrdinalIgnoreCase))
                       ?? req.Upscalers.Where(u => u.Path == NetworkFile.Find(req.Upscalers, fix.Upscaler)).Select(u => u.Name).FirstOrDefault()
                       ?? throw new EngineRequestException($"could not find upscaler named {fix.Upscaler} (this engine has {string.Join(", ", HiresFix.LatentUpscalers.Concat(Images.Upscaling.Upscalers).Concat(req.Upscalers.Select(u => u.Name)))})");
        if (!upscaler.StartsWith("Latent", StringComparison.Ordinal) && !_vae.CanEncode)
        {
            throw new EngineRequestException($"the hires upscaler {upscaler} needs the model's vae_encoder, which it does not have: use Latent");
        }

        var hiresSampler = sampler;
        var hiresSchedule = schedule;
        if (!string.IsNullOrEmpty(fix.Sampler) && fix.Sampler != "Use same sampler")
        {
            var (name, legacy) = Sampler.SplitLegacy(fix.Sampler);
            hiresSampler = Sampler.Find(name) ?? throw new EngineRequestException($"Sampler not found: {fix.Sampler}");
            hiresSchedule = legacy is null ? hiresSchedule : Schedules.Canonical(legacy) ?? hiresSchedule;
        }

        if (!string.IsNullOrEmpty(fix.Schedule) && fix.Schedule != "Use same scheduler")
        {
            hiresSchedule = Schedules.Canonical(fix.Schedule) ?? throw new EngineRequestException($"Scheduler not found: {fix.Schedule}");
        }

        // As A1111's second pass (img2img_fix_steps for the hires pass): the requested steps are the last ones of a
        // schedule of requested / strength steps; no strength, no second pass.
        var requested = fix.SecondPassSteps > 0 ? fix.SecondPassSteps : req.Steps;
        var strength = Math.Min(req.DenoisingStrength, 0.999);
        double[] sigmas = [0];
        if (strength > 0)
        {
            var all = (int)(requested / strength);
            sigmas = hiresSampler.Img2ImgSigmas(hiresSampler.SigmasFor(hiresSchedule, _schedule, all), _schedule, all, requested - 1);
        }

        var prompted = !string.IsNullOrEmpty(fix.Prompt) || !string.IsNullOrEmpty(fix.NegativePrompt);
        return new HiresPlan(fix, upscaler, x, y, truncX, truncY, hiresSampler, hiresSchedule, sigmas, prompted,
            string.IsNullOrEmpty(fix.Prompt) ? req.Prompt : fix.Prompt, string.IsNullOrEmpty(fix.NegativePrompt) ? req.NegativePrompt : fix.NegativePrompt);
    }

    /// <summary>The first pass's latents at the hires size: interpolated in latent space, or decoded, resized as a picture and encoded again; then cropped.</summary>
    private static float[] Upscale(HiresPlan plan, float[] latents, int lw, int lh, RunOptions runOptions, IReadOnlyList<NetworkFile> models, Vae vae, Vae encoder)
    {
        var (uw, uh) = (plan.UpscaleWidth / 8, plan.UpscaleHeight / 8);
        float[] up;
        if (plan.Upscaler.StartsWith("Latent", StringComparison.Ordinal))
        {
            up = LatentResize(latents, lw, lh, uw, uh, plan.Upscaler);
        }
        else
        {
            var rgb = vae.Decode(latents, lh, lw, runOptions);
            var picture = Images.Upscaling.Resize(rgb, lw * 8, lh * 8, uw * 8, uh * 8, plan.Upscaler == "None" ? "Lanczos" : plan.Upscaler, models);
            up = encoder.Encode((picture, uw * 8, uh * 8), uw * 8, uh * 8);
        }

        if (plan.TruncateX == 0 && plan.TruncateY == 0)
        {
            return up;
        }

        // A1111: samples[:, :, ty//2 : H-(ty+1)//2, tx//2 : W-(tx+1)//2].
        var (fw, fh) = (plan.LatentWidth, plan.LatentHeight);
        var (ox, oy) = (plan.TruncateX / 2, plan.TruncateY / 2);
        var cropped = new float[4 * fw * fh];
        for (var c = 0; c < 4; c++)
        {
            for (var y = 0; y < fh; y++)
            {
                up.AsSpan((c * uw * uh) + ((oy + y) * uw) + ox, fw).CopyTo(cropped.AsSpan((c * fw * fh) + (y * fw), fw));
            }
        }

        return cropped;
    }

    /// <summary>torch's interpolate on 4-channel latents: bilinear (align_corners false), nearest, or nearest-exact.</summary>
    public static float[] LatentResize(float[] src, int w, int h, int tw, int th, string mode)
    {
        var result = new float[4 * tw * th];
        var (sx, sy) = ((double)w / tw, (double)h / th);
        for (var c = 0; c < 4; c++)
        {
            var plane = src.AsSpan(c * w * h, w * h);
            for (var y = 0; y < th; y++)
            {
                for (var x = 0; x < tw; x++)
                {
                    float v;
                    if (mode == "Latent (nearest)")
                    {
                        v = plane[(Math.Min(h - 1, (int)Math.Floor(y * sy)) * w) + Math.Min(w - 1, (int)Math.Floor(x * sx))];
                    }
                    else if (mode == "Latent (nearest-exact)")
                    {
                        v = plane[(Math.Min(h - 1, (int)Math.Floor((y + 0.5) * sy)) * w) + Math.Min(w - 1, (int)Math.Floor((x + 0.5) * sx))];
                    }
                    else
                    {
                        var fy = Math.Max(0, ((y + 0.5) * sy) - 0.5);
                        var fx = Math.Max(0, ((x + 0.5) * sx) - 0.5);
                        var (y0, x0) = ((int)fy, (int)fx);
                        var (y1, x1) = (Math.Min(y0 + 1, h - 1), Math.Min(x0 + 1, w - 1));
                        var (ly, lx) = ((float)(fy - y0), (float)(fx - x0));
                        v = ((1 - ly) * (((1 - lx) * plane[(y0 * w) + x0]) + (lx * plane[(y0 * w) + x1])))
                            + (ly * (((1 - lx) * plane[(y1 * w) + x0]) + (lx * plane[(y1 * w) + x1])));
                    }

                    result[(c * tw * th) + (y * tw) + x] = v;
                }
            }
        }

        return result;
    }

    private static void Validate(GenerationRequest req)
    {
        if (req.Width % 8 != 0 || req.Height % 8 != 0 || req.Width is < 64 or > 4096 || req.Height is < 64 or > 4096)
        {
            throw new EngineRequestException($"width and height must be multiples of 8 between 64 and 4096 (got {req.Width}x{req.Height})");
        }

        if (req.Steps is < 1 or > 500)
        {
            throw new EngineRequestException("steps must be between 1 and 500");
        }

        if (req.BatchSize is < 1 or > 16 || req.Iterations is < 1 or > 100)
        {
            throw new EngineRequestException("batch_size must be 1-16 and n_iter 1-100");
        }

        if (!NoiseSources.IsKnown(req.RandnSource))
        {
            throw new EngineRequestException($"randn_source must be GPU, CPU or NV, not '{req.RandnSource}'");
        }

        if (req.SubseedStrength is < 0 or > 1)
        {
            throw new EngineRequestException("subseed_strength must be between 0 and 1");
        }

        if ((req.SeedResizeFromWidth > 0 && req.SeedResizeFromHeight > 0) && (req.SeedResizeFromWidth is < 8 or > 4096 || req.SeedResizeFromHeight is < 8 or > 4096))
        {
            throw new EngineRequestException("seed_resize_from_w and seed_resize_from_h must be between 8 and 4096 (0 or -1: off)");
        }

        if (req.DenoisingStrength is < 0 or > 1)
        {
            throw new EngineRequestException("denoising_strength must be between 0 and 1");
        }
    }

    /// <summary>How a request's text is encoded: the variant (null: the plain session), its clip skip and its embeddings' ids.</summary>
    private sealed class TextPlan(TextEncoderVariant? variant, int clipSkip) : IDisposable
    {
        public TextEncoderVariant? Variant => variant;
        public int ClipSkip => clipSkip;
        public IReadOnlyList<EmbeddingTokens> Embeddings => variant?.Embeddings ?? [];
        public List<string> Notes { get; } = [];
        public string? EmbeddingHashes { get; init; }

        public void Dispose() => variant?.Exit();
    }

    /// <summary>
    /// The text plan for a request: the embeddings whose names its prompts spell (loaded from <paramref name="available"/>),
    /// and its clip skip: 1 (the last layer) unless it asks for more and the model shows its layers; what the model
    /// cannot do is left out and said in the plan's notes; a clip skip past the first layer is refused.
    /// </summary>
    private TextPlan PlanText(int clipSkip, IReadOnlyList<NetworkFile> available, params string[] prompts)
    {
        var notes = new List<string>();
        var used = UsedEmbeddings(available, prompts, notes);
        if (clipSkip <= 1 && used.Count == 0)
        {
            return new TextPlan(null, 1);
        }

        if (IsXl)
        {
            // SDXL conditions on each encoder's penultimate layer; a variant of its first encoder alone would be half of it.
            var xl = new TextPlan(null, 1);
            xl.Notes.AddRange(notes);
            xl.Notes.AddRange([
                .. clipSkip > 1 ? [$"CLIP_stop_at_last_layers {clipSkip} is not applied: SDXL conditions on each encoder's penultimate layer"] : Array.Empty<string>(),
                .. used.Count > 0 ? [$"embeddings not applied ({string.Join(", ", used.Select(u => u.Embedding.Name))}): textual inversion is not available for SDXL models here"] : Array.Empty<string>(),
            ]);
            return xl;
        }

        var (variant, why) = Variant(clipSkip > 1, used);
        if (variant is null && clipSkip > 1)
        {
            notes.Add($"CLIP_stop_at_last_layers {clipSkip} is not applied: {why}");
            clipSkip = 1;
            (variant, why) = used.Count > 0 ? Variant(false, used) : (null, null);
        }

        if (variant is null && used.Count > 0)
        {
            notes.Add($"embeddings not applied ({string.Join(", ", used.Select(u => u.Embedding.Name))}): {why}");
            used = [];
        }

        if (variant is not null && clipSkip > variant.Layers + 1 && clipSkip > 1)
        {
            variant.Exit();
            throw new EngineRequestException($"CLIP_stop_at_last_layers must be between 1 and {variant.Layers + 1} for this model (its text encoder has {variant.Layers} layers)");
        }

        var plan = new TextPlan(variant, clipSkip)
        {
            EmbeddingHashes = used.Count == 0 ? null : string.Join(", ", used.Select(u => $"{u.Embedding.Name}: {FileHash(u.Embedding.Path)}")),
        };
        plan.Notes.AddRange(notes);
        return plan;
    }

    /// <summary>The embeddings of <paramref name="available"/> whose names' tokens appear in the prompts (as A1111 finds them), loaded; a file that does not load is a note.</summary>
    private List<(Embedding Embedding, IReadOnlyList<int> NameIds)> UsedEmbeddings(IReadOnlyList<NetworkFile> available, string[] prompts, List<string> notes)
    {
        var used = new List<(Embedding, IReadOnlyList<int>)>();
        if (available.Count == 0)
        {
            return used;
        }

        var streams = prompts.SelectMany(p => PromptWeights.Parse(ExtraNetworks.Strip(p).Prompt)).Select(piece => _tokenizer.Encode(piece.Text)).ToList();
        foreach (var file in available.DistinctBy(f => f.Name).OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            var name = _tokenizer.Encode(file.Name);
            if (name.Count == 0 || !streams.Any(s => Contains(s, name)))
            {
                continue;
            }

            try
            {
                used.Add((Embedding.Load(file), name));
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                notes.Add($"embedding {file.Name} is not applied: {e.Message}");
            }
        }

        return used;

        static bool Contains(IReadOnlyList<int> tokens, IReadOnlyList<int> name)
        {
            for (var i = 0; i + name.Count <= tokens.Count; i++)
            {
                var same = true;
                for (var k = 0; k < name.Count && same; k++)
                {
                    same = tokens[i + k] == name[k];
                }

                if (same)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>The text conditioning the UNet gets for a prompt (77 rows of the encoder's width per chunk, emphasis applied), for tools and tests.</summary>
    public float[] EncodePrompt(string prompt, int clipSkip = 1, IReadOnlyList<NetworkFile>? embeddings = null)
    {
        ObjectDisposedException.ThrowIf(!TryEnter(), this);
        try
        {
            using var text = PlanText(clipSkip, embeddings ?? [], prompt);
            var chunks = PromptChunks.From(_tokenizer, ExtraNetworks.Strip(prompt).Prompt, 1, text.Embeddings);
            return IsXl ? EncodeTextXl(chunks, zero: false).States : EncodeText(chunks, text);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Conditioning for [negative, positive], with the same number of 77-token chunks each.</summary>
    /// <remarks>As A1111, the extra networks (<c>&lt;lora:…&gt;</c>) are taken out of the text before it is encoded.</remarks>
    private Conditioning EncodePrompts(string prompt, string negative, TextPlan text)
    {
        prompt = ExtraNetworks.Strip(prompt).Prompt;
        negative = ExtraNetworks.Strip(negative).Prompt;
        var pos = PromptChunks.From(_tokenizer, prompt, 1, text.Embeddings);
        var neg = PromptChunks.From(_tokenizer, negative, pos.ChunkCount, text.Embeddings);
        if (neg.ChunkCount > pos.ChunkCount)
        {
            pos = PromptChunks.From(_tokenizer, prompt, neg.ChunkCount, text.Embeddings);
        }

        if (IsXl)
        {
            // A1111 zeroes an empty negative prompt's conditioning for SDXL (force_zero_negative_prompt).
            var (uStates, uPooled) = EncodeTextXl(neg, zero: negative.Length == 0);
            var (cStates, cPooled) = EncodeTextXl(pos, zero: false);
            return new Conditioning([.. uStates, .. cStates], [.. uPooled, .. cPooled]);
        }

        var u = EncodeText(neg, text);
        var c = EncodeText(pos, text);
        return new Conditioning([.. u, .. c], null);
    }

    /// <summary>Runs the text encoder chunk by chunk and applies emphasis as A1111 does (scale by weight, restore the mean).</summary>
    private float[] EncodeText(PromptChunks chunks, TextPlan text)
    {
        var hidden = new List<float>();
        for (var c = 0; c < chunks.ChunkCount; c++)
        {
            var ids = chunks.Ids.AsSpan(c * ClipTokenizer.ContextLength, ClipTokenizer.ContextLength).ToArray();
            var inputType = _textEncoder.InputMetadata["input_ids"].ElementDataType;
            using var input = inputType == TensorElementType.Int64
                ? OrtValue.CreateTensorValueFromMemory(ids.Select(i => (long)i).ToArray(), [1, ids.Length])
                : OrtValue.CreateTensorValueFromMemory(ids, [1, ids.Length]);
            float[] states;
            if (text.Variant is { } variant)
            {
                states = variant.Encode(input, text.ClipSkip);
            }
            else
            {
                using var options = new RunOptions();
                using var outputs = _textEncoder.Run(options, new Dictionary<string, OrtValue> { ["input_ids"] = input }, ["last_hidden_state"]);
                states = ExecutionProviders.ReadFloats(outputs[0]);
            }

            var width = states.Length / ClipTokenizer.ContextLength;
            _hiddenWidth = width;
            var before = states.Average();
            for (var t = 0; t < ClipTokenizer.ContextLength; t++)
            {
                var w = chunks.Weights[(c * ClipTokenizer.ContextLength) + t];
                for (var k = 0; k < width; k++)
                {
                    states[(t * width) + k] *= w;
                }
            }

            var after = states.Average();
            if (after != 0)
            {
                var fix = before / after;
                for (var i = 0; i < states.Length; i++)
                {
                    states[i] *= fix;
                }
            }

            hidden.AddRange(states);
        }

        return [.. hidden];
    }

    /// <summary>
    /// The UNet's inputs and output, wrapped once per request over buffers that every step rewrites in place. The sampler
    /// works on fp32 <see cref="Input"/> and <see cref="Output"/>; an fp16 UNet gets half-precision copies of them.
    /// With IO binding (on CUDA), the text conditioning is copied to the device once, when it is bound, and stays there
    /// for every step; each step copies only the latents in and the noise prediction out.
    /// </summary>
    private sealed class UnetBindings : IDisposable
    {
        private readonly Float16[]? _inputHalf;
        private readonly Float16[]? _outputHalf;
        private readonly OrtIoBinding? _binding;

        public UnetBindings(DiffusionPipeline owner, Conditioning condition, bool guided, int h, int w)
        {
            var conditioning = condition.States;
            var batch = guided ? 2 : 1;
            var n = 4 * h * w;
            Guided = guided;
            Input = new float[batch * n];
            Output = new float[batch * n];
            var seqHidden = conditioning.Length / 2;
            long[] latentShape = [batch, 4, h, w];
            if (owner._unetType == TensorElementType.Float16)
            {
                _inputHalf = new Float16[batch * n];
                _outputHalf = new Float16[batch * n];
                Sample = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _inputHalf.AsMemory(), latentShape);
                Result = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _outputHalf.AsMemory(), latentShape);
            }
            else
            {
                Sample = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Input.AsMemory(), latentShape);
                Result = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Output.AsMemory(), latentShape);
            }

            var states = conditioning.AsSpan(guided ? 0 : seqHidden, batch * seqHidden).ToArray();
            States = ExecutionProviders.FloatTensor(states, [batch, seqHidden / owner._hiddenWidth, owner._hiddenWidth], owner._statesType);
            (Timestep, SetTimestep) = owner._timestepType switch
            {
                TensorElementType.Int64 => Bind(new long[1], (a, t) => a[0] = (long)Math.Round(t)),
                TensorElementType.Int32 => Bind(new int[1], (a, t) => a[0] = (int)Math.Round(t)),
                TensorElementType.Float16 => Bind(new Float16[1], (a, t) => a[0] = (Float16)(float)t),
                _ => Bind(new float[1], (a, t) => a[0] = (float)t),
            };
            if (condition.Pooled is { } pooled)
            {
                var (embeds, timeIds) = owner.XlInputs(pooled, guided, h, w);
                Extra = [("text_embeds", embeds), ("time_ids", timeIds)];
            }

            _names = [.. UnetInputs, .. Extra.Select(e => e.Name)];
            if (owner._ioBinding)
            {
                _binding = owner._unet.CreateIoBinding();
                _binding.BindInput("encoder_hidden_states", States);
                foreach (var (name, value) in Extra)
                {
                    _binding.BindInput(name, value);
                }

                _binding.BindOutput("out_sample", Result);
            }
        }

        private readonly string[] _names;

        /// <summary>The UNet's inputs past the three of SD 1.x (SDXL's <c>text_embeds</c> and <c>time_ids</c>), bound once.</summary>
        public IReadOnlyList<(string Name, OrtValue Value)> Extra { get; } = [];

        public bool Guided { get; }
        public float[] Input { get; }
        public float[] Output { get; }
        public OrtValue Sample { get; }
        public OrtValue Result { get; }
        public OrtValue States { get; }
        public OrtValue Timestep { get; }
        public Action<double> SetTimestep { get; }

        /// <summary>One UNet call over the bound buffers: <see cref="Input"/> in, <see cref="Output"/> out.</summary>
        public void Run(InferenceSession unet, RunOptions runOptions)
        {
            if (_inputHalf is not null)
            {
                for (var i = 0; i < _inputHalf.Length; i++)
                {
                    _inputHalf[i] = (Float16)Input[i];
                }
            }

            if (_binding is not null)
            {
                // Bound again each step: binding a host tensor to a device input is what copies it there.
                _binding.BindInput("sample", Sample);
                _binding.BindInput("timestep", Timestep);
                unet.RunWithBinding(runOptions, _binding);
                _binding.SynchronizeBoundOutputs();
            }
            else
            {
                unet.Run(runOptions, _names, [Sample, Timestep, States, .. Extra.Select(e => e.Value)], UnetOutputs, [Result]);
            }

            if (_outputHalf is not null)
            {
                for (var i = 0; i < _outputHalf.Length; i++)
                {
                    Output[i] = (float)_outputHalf[i];
                }
            }
        }

        private static (OrtValue, Action<double>) Bind<T>(T[] cell, Action<T[], double> set) where T : unmanaged =>
            (OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, cell.AsMemory(), [1]), t => set(cell, t));

        public void Dispose()
        {
            _binding?.Dispose();
            Sample.Dispose();
            Result.Dispose();
            States.Dispose();
            Timestep.Dispose();
            foreach (var (_, value) in Extra)
            {
                value.Dispose();
            }
        }
    }

    private static readonly string[] UnetInputs = ["sample", "timestep", "encoder_hidden_states"];
    private static readonly string[] UnetOutputs = ["out_sample"];

    /// <summary>The UNet's input scale at σ: 1/√(σ² + 1), from k-diffusion's σ space to the model's.</summary>
    private static float CIn(double sigma) => (float)(1 / Math.Sqrt((sigma * sigma) + 1));

    /// <remarks>With <paramref name="uncond"/> (a CFG++ sampler's), the unconditional prediction is written there too (the guided one without guidance).</remarks>
    private void Denoise(ReadOnlySpan<float> x, double sigma, double cfg, UnetBindings io, Span<float> eps, RunOptions runOptions, CancellationToken ct,
        Span<float> uncond = default, InferenceSession? unet = null)
    {
        ct.ThrowIfCancellationRequested();
        var n = x.Length;
        var cIn = CIn(sigma);
        var input = io.Input;
        var output = io.Output;
        if (io.Guided)
        {
            // The same scaled latents for the unconditional and the conditional half, in one pass.
            for (var i = 0; i < n; i++)
            {
                input[i] = input[n + i] = x[i] * cIn;
            }
        }
        else
        {
            for (var i = 0; i < n; i++)
            {
                input[i] = x[i] * cIn;
            }
        }

        io.SetTimestep(_schedule.TimestepOf(sigma));
        io.Run(unet ?? _unet, runOptions);
        if (io.Guided)
        {
            var s = (float)cfg;
            for (var i = 0; i < n; i++)
            {
                eps[i] = output[i] + (s * (output[n + i] - output[i]));
            }
        }
        else
        {
            output.AsSpan(0, n).CopyTo(eps);
        }

        if (!uncond.IsEmpty)
        {
            (io.Guided ? output.AsSpan(0, n) : eps).CopyTo(uncond);
        }
    }

    protected override void Free()
    {
        _latentGraphs?.Dispose();
        _deviceAllocator?.Dispose();
        _deviceMemory?.Dispose();
        _textEncoder.Dispose();
        if (!ReferenceEquals(_textEncoder2, _textEncoder))
        {
            _textEncoder2?.Dispose();
        }

        foreach (var (_, variant, _) in _variants)
        {
            variant?.Dispose();
        }
        _unet.Dispose();
        _vae.Dispose();
        foreach (var (_, vae) in _vaes)
        {
            vae.Dispose();
        }
    }
}

