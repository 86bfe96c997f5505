using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Atelier.Contracts.A1111;
using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using Atelier.Engine.Sampling;

namespace Atelier.Worker.A1111;

/// <summary>The engine server's state: models, loaded pipelines, options (in memory), the running job and its progress.</summary>
public sealed class EngineState : IDisposable
{
    private readonly EngineOptions _options;
    private readonly PipelineCache _cache;
    private readonly SemaphoreSlim _queue = new(1, 1);
    private readonly ConcurrentDictionary<string, TaskProgress> _tasks = new();
    private readonly Lock _gate = new();
    private CancellationTokenSource? _interrupt;
    private volatile bool _skip;
    private TaskProgress? _current;

    private readonly TimeProvider _clock;

    public EngineState(EngineOptions options, TimeProvider clock, StartedDevice? device = null)
    {
        _options = options;
        _clock = clock;
        _cache = new PipelineCache(options.MemoryBudgetBytes, (device ?? StartedDevice.Cpu).Settings);
        DemoModel.Ensure(options.ModelsDirectory);
        Rescan();
        Options["sd_model_checkpoint"] = Models.Count > 0 ? Models[0].Title : "";
        Options["sd_checkpoint_hash"] = Models.Count > 0 ? Models[0].Sha256 : "";
        Options["samples_format"] = "png";
    }

    public IReadOnlyList<ModelEntry> Models { get; private set; } = [];
    public ConcurrentDictionary<string, object?> Options { get; } = new();

    public void Rescan() => Models = ModelEntry.Scan(_options.ModelsDirectory);

    /// <summary>The LoRAs in the models folder's <c>Lora</c> folder (as A1111's <c>models/Lora</c>), read at each call.</summary>
    public IReadOnlyList<Engine.Lora.NetworkFile> Loras => Engine.Lora.NetworkFile.Scan(Path.Combine(_options.ModelsDirectory, "Lora"));

    /// <summary>The VAE folders in the models folder's <c>VAE</c> folder (as A1111's <c>models/VAE</c>), read at each call.</summary>
    public IReadOnlyList<Engine.Lora.NetworkFile> Vaes => Engine.Lora.NetworkFile.ScanVaes(Path.Combine(_options.ModelsDirectory, "VAE"));

    /// <summary>The ONNX upscaler models in the models folder's <c>ESRGAN</c> folder (as A1111's <c>models/ESRGAN</c>), read at each call.</summary>
    public IReadOnlyList<Engine.Lora.NetworkFile> Upscalers => OnnxUpscaler.Scan(Path.Combine(_options.ModelsDirectory, "ESRGAN"));

    /// <summary>The textual-inversion embeddings in the models folder's <c>embeddings</c> folder (A1111's <c>embeddings</c>), read at each call.</summary>
    public IReadOnlyList<Engine.Lora.NetworkFile> Embeddings => Engine.Lora.NetworkFile.Scan(Path.Combine(_options.ModelsDirectory, "embeddings"));

    public void SetOptions(Dictionary<string, JsonElement> changes)
    {
        foreach (var (k, v) in changes)
        {
            Options[k] = v;
        }
    }

    public void Interrupt()
    {
        lock (_gate)
        {
            if (_current is not null)
            {
                _current.Interrupted = true;
            }

            _interrupt?.Cancel();
        }
    }

    public void Skip() => _skip = true;

    public async Task<IResult> RunAsync(A1111Request req, bool img2img, CancellationToken ct)
    {
        var (samplerName, legacySchedule) = Sampler.SplitLegacy(req.SamplerName ?? req.SamplerIndex ?? "Euler");
        var sampler = Sampler.Find(samplerName);
        if (sampler is null)
        {
            return Results.Json(new { detail = "Sampler not found" }, statusCode: 404);
        }

        var schedule = req.Scheduler is null or "" ? legacySchedule ?? "Automatic" : Capitalize(req.Scheduler);
        if (!Schedules.Names.Contains(schedule))
        {
            return Results.Json(new { detail = "Scheduler not found" }, statusCode: 404);
        }

        (byte[] Rgb, int Width, int Height)? init = null;
        InpaintPlan? inpaint = null;
        SdUpscaleScript? script = null;
        var warnings = new List<string>();
        if (!img2img && SdUpscaleScript.Names(req.ScriptName))
        {
            // An img2img script, which A1111's txt2img does not have.
            return Results.Json(new { detail = $"Script '{req.ScriptName}' not found" }, statusCode: 422);
        }

        if (img2img)
        {
            if (req.ResizeMode is < ImageDecoder.JustResize or > ImageDecoder.LatentUpscale)
            {
                return Results.Json(new { detail = $"resize_mode must be 0 (just resize), 1 (crop and resize), 2 (resize and fill) or 3 (latent upscale), not {req.ResizeMode}" }, statusCode: 422);
            }

            var first = req.InitImages?.FirstOrDefault();
            var bytes = first is null ? null : Base64Image.Decode(first);
            if (bytes is null)
            {
                return Results.Json(new { detail = "Init image not found" }, statusCode: 404);
            }

            if (!string.IsNullOrEmpty(req.Mask))
            {
                var mask = Base64Image.Decode(req.Mask);
                if (mask is null)
                {
                    return Results.Json(new { detail = "Invalid mask: not base64" }, statusCode: 422);
                }

                try
                {
                    inpaint = Inpainting.Prepare(bytes, mask, Adapters.EngineJob.InpaintOf(req), req.Width, req.Height, req.ResizeMode);
                }
                catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
                {
                    return Results.Json(new { detail = $"Invalid mask or init image: {e.Message}" }, statusCode: 422);
                }
                catch (EngineRequestException e)
                {
                    return Results.Json(new { detail = e.Message }, statusCode: 422);
                }

                if (inpaint is null)
                {
                    warnings.Add(Inpainting.BlankMask);
                }
            }

            if (SdUpscaleScript.Names(req.ScriptName))
            {
                if (!string.IsNullOrEmpty(req.Mask))
                {
                    return Results.Json(new { detail = "sd upscale is an img2img script: it takes no mask" }, statusCode: 422);
                }

                try
                {
                    script = SdUpscaleScript.FromArgs(req.Extra?.TryGetValue("script_args", out var args) == true ? args : null, Adapters.EngineJob.UpscalerNames(Upscalers));
                }
                catch (EngineRequestException e)
                {
                    return Results.Json(new { detail = e.Message }, statusCode: 422);
                }
            }

            try
            {
                init = inpaint is not null ? null
                    : script is not null ? ImageDecoder.DecodeOriginal(bytes)
                    : ImageDecoder.DecodeForImg2Img(bytes, req.Width, req.Height, req.ResizeMode);
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
            {
                return Results.Json(new { detail = $"Invalid init image: {e.Message}" }, statusCode: 422);
            }
        }

        var model = ResolveModel(req, warnings);
        if (model is null)
        {
            return Results.Json(new { detail = "No model is available" }, statusCode: 503);
        }

        // A1111's refiner: a checkpoint of this engine's, or A1111's error for a name it does not have.
        var (refinerName, refinerSwitch) = Adapters.EngineJob.RefinerOf(req.Extra);
        var refinerModel = refinerName is null ? null : Models.FirstOrDefault(m => m.Matches(refinerName));
        if (refinerName is not null && refinerModel is null)
        {
            return Results.Json(new { detail = $"Could not find checkpoint with name {refinerName}" }, statusCode: 422);
        }

        var unsupported = Unsupported(req);
        // A1111's extra networks: the prompt's <lora:…> are merged into the model; names with no file, and kinds this
        // engine does not have (<hypernet:…>), are said in warnings and left out, as A1111 leaves them out.
        var loraFiles = Loras;
        var (loras, missingLoras) = Engine.Lora.LoraUse.FromPrompt(req.Prompt, name => Engine.Lora.NetworkFile.Find(loraFiles, name));
        if (missingLoras.Count > 0)
        {
            warnings.Add("Networks not found: " + string.Join(", ", missingLoras.Distinct()));
        }

        var otherNetworks = Engine.Text.ExtraNetworks.Strip(req.Prompt).Networks.Where(n => n.Kind != "lora").Select(n => $"{n.Kind}:{n.Name}").Distinct().ToList();
        if (otherNetworks.Count > 0)
        {
            warnings.Add("Extra networks this engine does not have: " + string.Join(", ", otherNetworks));
        }

        var taskId = req.ForceTaskId ?? $"task({Guid.NewGuid():N})";
        var task = _tasks[taskId] = new TaskProgress { Id = taskId, JobCount = req.BatchSize * req.NIter, Steps = req.Steps };
        await _queue.WaitAsync(ct);
        try
        {
            using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(ct);
            lock (_gate)
            {
                _interrupt = interrupt;
                _current = task;
                _skip = false;
            }

            task.Started = _clock.GetUtcNow().UtcDateTime;
            PipelineLease lease;
            try
            {
                lease = _cache.Rent(model, loras);
            }
            catch (InvalidDataException e)
            {
                return Results.Json(new { detail = loras.Count > 0 ? $"LoRA or model: {e.Message}" : $"Model: {e.Message}" }, statusCode: 422);
            }

            using var held = lease;
            var pipeline = lease.Pipeline;
            PipelineLease? refinerLease = null;
            try
            {
                // A refiner that is the model itself is no refiner (A1111's apply_refiner does not switch to the loaded checkpoint).
                refinerLease = refinerModel is null || refinerModel.Folder == model.Folder ? null : _cache.Rent(refinerModel);
            }
            catch (InvalidDataException e)
            {
                return Results.Json(new { detail = $"Refiner: {e.Message}" }, statusCode: 422);
            }

            using var heldRefiner = refinerLease;
            if (pipeline.UnmatchedLoraModules is { Count: > 0 } unmatched)
            {
                warnings.Add($"LoRA modules this model has no weight for, not applied: {unmatched.Count} ({string.Join(", ", unmatched.Take(3))}{(unmatched.Count > 3 ? ", …" : "")})");
            }

            var request = new GenerationRequest
            {
                Prompt = req.Prompt, NegativePrompt = req.NegativePrompt, Seed = req.Seed, Sampler = sampler.Name, Schedule = schedule,
                Steps = req.Steps, CfgScale = req.CfgScale, Width = req.Width, Height = req.Height, BatchSize = req.BatchSize,
                Iterations = req.NIter, InitImage = init, DenoisingStrength = req.DenoisingStrength ?? 0.75,
                Subseed = req.Subseed, SubseedStrength = req.SubseedStrength, SeedResizeFromWidth = req.SeedResizeFromW, SeedResizeFromHeight = req.SeedResizeFromH,
                EtaNoiseSeedDelta = Setting(req, "eta_noise_seed_delta") is { ValueKind: JsonValueKind.Number } ensd ? (long)ensd.GetDouble() : 0,
                Hires = Adapters.EngineJob.HiresOf(req),
                RandnSource = Setting(req, "randn_source") is { ValueKind: JsonValueKind.String } source ? source.GetString()! : NoiseSources.Gpu,
                Inpaint = inpaint,
                SdUpscale = script,
                Refiner = refinerLease is null ? null : new RefinerUse(refinerLease.Pipeline, refinerSwitch, refinerModel!.Title),
                ClipSkip = Adapters.EngineJob.ClipSkipOf(Setting(req, "CLIP_stop_at_last_layers")),
                Embeddings = Embeddings,
                Upscalers = Upscalers,
                Vae = Engine.Lora.NetworkFile.FindVae(Vaes, Setting(req, "sd_vae") is { ValueKind: JsonValueKind.String } vae ? vae.GetString() : null, out var vaeMissing),
            };
            if (vaeMissing)
            {
                warnings.Add($"VAE '{Setting(req, "sd_vae")?.GetString()}' not found: used the model's own");
            }

            if (request.ClipSkip > 1 && pipeline.ClipSkipUnsupported is not null)
            {
                unsupported.Add("override_settings.CLIP_stop_at_last_layers"); // the engine's warning says why
            }

            GenerationResult result;
            try
            {
                result = await Task.Run(() => pipeline.Generate(request, p =>
                {
                    task.Step = p.Step;
                    task.Steps = p.Steps;
                    task.JobNo = p.Image;
                    task.Eta = p.Eta;
                    task.Latest = p;
                    task.Preview = null;
                }, interrupt.Token, () =>
                {
                    if (!_skip)
                    {
                        return false;
                    }

                    _skip = false;
                    task.Skipped = true;
                    return true;
                }), CancellationToken.None);
            }
            catch (OperationCanceledException)
            {
                result = new GenerationResult([], req.Seed, [], model.ShortHash, model.Name);
            }
            catch (EngineRequestException e)
            {
                return Results.Json(new { detail = e.Message }, statusCode: 422);
            }
            catch (Exception e) when (e is Microsoft.ML.OnnxRuntime.OnnxRuntimeException or InvalidDataException or IOException)
            {
                // The engine itself failed (a broken model file, say): answer in A1111's error shape, never an empty 500.
                return Results.Json(new { error = e.GetType().Name, detail = e.Message, errors = "" }, statusCode: 500);
            }

            task.Done = true;
            warnings.AddRange(result.Warnings);
            // A1111's samples_format and jpeg_quality (the request's override_settings, else the options): PNG, JPEG or WebP.
            var format = Setting(req, "samples_format") is { ValueKind: JsonValueKind.String } f ? f.GetString()! : "png";
            var quality = Setting(req, "jpeg_quality") is { ValueKind: JsonValueKind.Number } q ? (int)Math.Round(Math.Clamp(q.GetDouble(), 1, 100)) : SampleFormats.DefaultQuality;
            if (!SampleFormats.IsKnown(format))
            {
                warnings.Add($"samples_format '{format}' is not png, jpg, jpeg or webp; the images are PNG");
                format = SampleFormats.Png;
            }

            var images = req.SendImages ? result.Images.Select(i => Convert.ToBase64String(SampleFormats.FromPng(i.Png, format, quality))).ToList() : [];
            var info = Info(req, sampler.Name, schedule, result, model, unsupported, warnings, _cache.LastLoadTime, pipeline.ExecutionProvider);
            return Results.Json(new A1111Response(images, req, info));
        }
        finally
        {
            lock (_gate)
            {
                _interrupt = null;
                _current = null;
            }

            task.Done = true;
            _queue.Release();
        }
    }

    public ProgressResponse Progress(bool skipCurrentImage, string? taskId)
    {
        TaskProgress? task;
        if (taskId is not null)
        {
            _tasks.TryGetValue(taskId, out task);
        }
        else
        {
            lock (_gate)
            {
                task = _current;
            }
        }

        if (task is null || task.Done)
        {
            var state = new ProgressState(task?.Skipped ?? false, task?.Interrupted ?? false, "", 0, "0", 0, 0, 0);
            return new ProgressResponse(task?.Done == true ? 1 : 0, 0, state, null, task?.Done == true ? "Done" : null);
        }

        var steps = Math.Max(1, task.Steps);
        var progress = Math.Min(1, 0.01 + ((double)task.JobNo / Math.Max(1, task.JobCount)) + ((double)task.Step / steps / Math.Max(1, task.JobCount)));
        string? preview = null;
        if (!skipCurrentImage && task.Latest is { } latest)
        {
            task.Preview ??= latest.PreviewPng() is { } png ? Convert.ToBase64String(png) : null;
            preview = task.Preview;
        }

        return new ProgressResponse(progress, task.Eta.TotalSeconds,
            new ProgressState(task.Skipped, task.Interrupted, task.Id, task.JobCount, task.Started.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture),
                task.JobNo, task.Step, task.Steps), preview, null);
    }

    private ModelEntry? ResolveModel(A1111Request req, List<string> warnings)
    {
        if (req.OverrideSettings?.TryGetValue("sd_model_checkpoint", out var wanted) == true && wanted.ValueKind == JsonValueKind.String)
        {
            var match = Models.FirstOrDefault(m => m.Matches(wanted.GetString()!));
            if (match is not null)
            {
                return match;
            }

            // A1111 drops an unknown checkpoint silently; we do the same but say so in info.
            warnings.Add($"checkpoint '{wanted.GetString()}' not found; used the current one");
        }

        var current = Options.TryGetValue("sd_model_checkpoint", out var title) ? title?.ToString() : null;
        return Models.FirstOrDefault(m => current is not null && m.Matches(current.Trim('"'))) ?? (Models.Count > 0 ? Models[0] : null);
    }

    private static List<string> Unsupported(A1111Request req)
    {
        var list = new List<string>();
        if (req.RestoreFaces)
        {
            list.Add("restore_faces");
        }

        if (req.Tiling)
        {
            list.Add("tiling");
        }

        var sdUpscale = SdUpscaleScript.Names(req.ScriptName);
        if (!string.IsNullOrEmpty(req.ScriptName) && !sdUpscale)
        {
            list.Add("script_name");
        }

        if (req.AlwaysonScripts is { Count: > 0 })
        {
            list.Add("alwayson_scripts");
        }

        if (req.Styles is { Count: > 0 })
        {
            list.Add("styles");
        }

        if (req.SaveImages)
        {
            list.Add("save_images");
        }

        // Fields A1111 reads that this engine does not, when they ask for something other than what it does anyway.
        foreach (var (key, value) in req.Extra ?? [])
        {
            var ignored = key switch
            {
                "s_churn" or "s_tmin" => value.ValueKind == JsonValueKind.Number && value.GetDouble() != 0,
                "s_noise" or "initial_noise_multiplier" => value.ValueKind == JsonValueKind.Number && value.GetDouble() != 1,
                "s_tmax" or "eta" => value.ValueKind == JsonValueKind.Number,
                "latent_mask" => value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 },
                "script_args" => !sdUpscale && value.ValueKind == JsonValueKind.Array && value.GetArrayLength() > 0,
                "include_init_images" => value.ValueKind == JsonValueKind.True,
                _ => false,
            };
            if (ignored)
            {
                list.Add(key);
            }
        }

        // Options the built-in engine does not read (the checkpoint it does; settings equal to what it does anyway are no loss).
        foreach (var (key, value) in req.OverrideSettings ?? [])
        {
            var same = key switch
            {
                "sd_model_checkpoint" or "sd_checkpoint_hash" or "sd_vae" => true,
                "samples_format" => value.ValueKind == JsonValueKind.String && SampleFormats.IsKnown(value.GetString()),
                "CLIP_stop_at_last_layers" => value.ValueKind == JsonValueKind.Number, // applied where the model shows its layers (else said after loading it)
                "eta_noise_seed_delta" or "jpeg_quality" => value.ValueKind == JsonValueKind.Number,
                "randn_source" => value.ValueKind == JsonValueKind.String && NoiseSources.IsKnown(value.GetString()),
                _ => false,
            };
            if (!same)
            {
                list.Add("override_settings." + key);
            }
        }

        return list;
    }

    private string Info(A1111Request req, string sampler, string schedule, GenerationResult result, ModelEntry model, List<string> unsupported,
        List<string> warnings, TimeSpan loadTime, string provider)
    {
        var info = A1111Info.Build(req, sampler, schedule, result.Seeds, [.. result.Images.Select(i => i.Infotext)], model.Name, model.ShortHash, _clock.GetUtcNow(),
            result.Subseeds);
        info["unsupported"] = unsupported;
        info["warnings"] = warnings;
        info["model_load_ms"] = Math.Round(loadTime.TotalMilliseconds, 1);
        info["execution_provider"] = provider;
        return JsonSerializer.Serialize(info);
    }

    private static string Capitalize(string s) => Schedules.Canonical(s) ?? s;

    /// <summary>An option as this request sees it: its <c>override_settings</c>, else the engine's options.</summary>
    private JsonElement? Setting(A1111Request req, string key)
    {
        if (req.OverrideSettings is { } overrides && overrides.TryGetValue(key, out var value))
        {
            return value;
        }

        return Options.TryGetValue(key, out var option) ? option switch
        {
            JsonElement e => e,
            null => null,
            var other => JsonSerializer.SerializeToElement(other),
        } : null;
    }

    public void Dispose()
    {
        _cache.Dispose();
        _queue.Dispose();
    }

    private sealed class TaskProgress
    {
        public required string Id { get; init; }
        public int JobCount { get; init; }
        public int JobNo { get; set; }
        public int Step { get; set; }
        public int Steps { get; set; }
        public TimeSpan Eta { get; set; }
        public DateTime Started { get; set; }
        public bool Done { get; set; }
        public bool Skipped { get; set; }
        public bool Interrupted { get; set; }
        public GenerationProgress? Latest { get; set; }
        public string? Preview { get; set; }
    }
}
