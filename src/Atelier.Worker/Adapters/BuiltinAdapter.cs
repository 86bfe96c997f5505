using Atelier.Contracts.Workers;
using Atelier.Engine.Pipeline;
using Atelier.Worker.Delivery;

namespace Atelier.Worker.Adapters;

/// <summary>
/// The built-in ONNX engine, in process: the model folders in its models folder, and fetched models (versions of type
/// onnx whose files are a diffusers ONNX folder), loaded from the worker's model cache.
/// </summary>
public sealed class BuiltinAdapter(string modelsDirectory, long memoryBudgetBytes = 8L << 30, StartedDevice? device = null) : IEngineAdapter, IModelInstaller
{
    private readonly PipelineCache _cache = new(memoryBudgetBytes, (device ?? StartedDevice.Cpu).Settings);

    /// <summary>The device the engine really runs on, with the warning when it fell back to the CPU.</summary>
    public StartedDevice Device { get; } = device ?? StartedDevice.Cpu;

    public string Name => "builtin";

    public PipelineCache Cache => _cache;

    public Task<IReadOnlyList<EngineModel>> ListModelsAsync(CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<EngineModel>>([.. ModelEntry.Scan(modelsDirectory).Select(m => new EngineModel(m.Name, m.Title, m.ShortHash, m.Sha256))]);

    public Task<EngineResult> GenerateAsync(EngineJob job, IProgress<EngineProgress>? progress, CancellationToken ct)
    {
        var model = job.ModelFolder is { } fetched ? new ModelEntry(fetched.Name, fetched.Folder, fetched.Sha256)
            : ModelEntry.Scan(modelsDirectory).FirstOrDefault(m => m.Matches(job.Model))
              ?? throw new EngineFailedException($"model '{job.Model}' is not in {modelsDirectory}");
        return Task.Run(() =>
        {
            try
            {
                // The prompt's <lora:…>: the files fetched for the job, then the models folder's Lora folder; a name with
                // neither is left out, as A1111 leaves it out.
                IReadOnlyList<Engine.Lora.NetworkFile> files = [.. job.Loras, .. Engine.Lora.NetworkFile.Scan(Path.Combine(modelsDirectory, "Lora"))];
                var (loras, _) = Engine.Lora.LoraUse.FromPrompt(job.Prompt, name => Engine.Lora.NetworkFile.Find(files, name));
                using var lease = _cache.Rent(model, loras);
                var pipeline = lease.Pipeline;
                // A1111's refiner: a model of this engine's models folder, rented for the job's time.
                var refinerModel = job.RefinerCheckpoint is not { } refinerName ? null
                    : ModelEntry.Scan(modelsDirectory).FirstOrDefault(m => m.Matches(refinerName))
                      ?? throw new EngineRequestException($"Could not find checkpoint with name {refinerName}");
                // A refiner that is the model itself is no refiner (A1111's apply_refiner does not switch to the loaded checkpoint).
                refinerModel = refinerModel?.Folder == model.Folder ? null : refinerModel;
                using var refinerLease = refinerModel is null ? null : _cache.Rent(refinerModel);
                TimeSpan? previewAt = null;
                // Inpainting as A1111 (a blank mask with "only masked" is a plain img2img there too).
                var inpaint = job is { InitImagePng: { } image, MaskPng: { } mask }
                    ? Engine.Images.Inpainting.Prepare(image, mask, job.Inpaint, job.Width, job.Height, job.ResizeMode) : null;
                var upscalers = Engine.Images.OnnxUpscaler.Scan(Path.Combine(modelsDirectory, "ESRGAN"));
                // A1111's SD upscale script: the whole init picture, cut into tiles of the request's size.
                var script = !Engine.Images.SdUpscaleScript.Names(job.ScriptName) ? null
                    : job.InitImagePng is null || job.MaskPng is not null ? throw new EngineRequestException("sd upscale is an img2img script: it takes an init image and no mask")
                    : Engine.Images.SdUpscaleScript.FromArgs(job.ScriptArgs, EngineJob.UpscalerNames(upscalers));
                var init = job.InitImagePng is null || inpaint is not null ? ((byte[], int, int)?)null
                    : script is not null ? Engine.Images.ImageDecoder.DecodeOriginal(job.InitImagePng)
                    : Engine.Images.ImageDecoder.DecodeForImg2Img(job.InitImagePng, job.Width, job.Height, job.ResizeMode);
                var result = pipeline.Generate(new GenerationRequest
                {
                    Prompt = job.Prompt, NegativePrompt = job.NegativePrompt, Seed = job.Seed, Sampler = job.Sampler, Schedule = job.Schedule,
                    Steps = job.Steps, CfgScale = job.CfgScale, Width = job.Width, Height = job.Height,
                    BatchSize = script is null ? job.BatchSize : Math.Max(1, job.BatchSize / job.Iterations), Iterations = script is null ? 1 : job.Iterations, SdUpscale = script,
                    InitImage = init, DenoisingStrength = job.DenoisingStrength, Subseed = job.Subseed, SubseedStrength = job.SubseedStrength,
                    SeedResizeFromWidth = job.SeedResizeFromWidth, SeedResizeFromHeight = job.SeedResizeFromHeight, EtaNoiseSeedDelta = job.EtaNoiseSeedDelta,
                    Hires = job.Hires, RandnSource = job.RandnSource, Inpaint = inpaint, ClipSkip = job.ClipSkip,
                    Embeddings = [.. job.Embeddings, .. Engine.Lora.NetworkFile.Scan(Path.Combine(modelsDirectory, "embeddings"))],
                    Upscalers = upscalers,
                    Refiner = refinerLease is null ? null : new RefinerUse(refinerLease.Pipeline, job.RefinerSwitchAt, refinerModel!.Title),
                    // A VAE the worker does not have is left out, as A1111 falls back to the model's own.
                    Vae = Engine.Lora.NetworkFile.FindVae(Engine.Lora.NetworkFile.ScanVaes(Path.Combine(modelsDirectory, "VAE")), job.Vae, out _),
                }, p =>
                {
                    if (progress is null)
                    {
                        return;
                    }

                    // A live preview (the latents as a small PNG) at most twice a second: the heartbeat sends at most one a second.
                    byte[]? preview = null;
                    if (previewAt is null || p.Elapsed - previewAt >= TimeSpan.FromMilliseconds(500))
                    {
                        preview = p.PreviewPng();
                        previewAt = p.Elapsed;
                    }

                    progress.Report(new EngineProgress(p.Step, p.Steps, (double)((p.Image * p.Steps) + p.Step) / (p.ImageCount * p.Steps), preview));
                }, ct);
                return new EngineResult([.. result.Images.Select(i => i.Png)], result.Seeds, result.ModelHash, [.. result.Images.Select(i => i.Infotext)], result.Subseeds);
            }
            catch (EngineRequestException e)
            {
                throw new EngineFailedException(e.Message, e);
            }
            catch (InvalidDataException e)
            {
                throw new EngineFailedException(e.Message.StartsWith("the mask", StringComparison.Ordinal) || e.Message.Contains("safetensors", StringComparison.Ordinal)
                    ? e.Message : $"init image: {e.Message}", e);
            }
        }, ct);
    }

    public bool CanInstall => true;

    public string? CannotRun(LeasedModel model)
    {
        if (model.Type != "onnx")
        {
            var primary = model.Files?.FirstOrDefault(f => f.Primary)?.Path;
            return $"onnx (the built-in engine runs diffusers ONNX model folders, models of type onnx; {model.Name} {model.VersionName} is a {model.Type}" +
                   (primary is null ? ")" : $", {primary})");
        }

        var (_, problem) = OnnxFolders.RootOf(model);
        return problem is null ? null : $"onnx (the built-in engine runs diffusers ONNX model folders; {model.Name} {model.VersionName} is not one: {problem})";
    }

    public Task<InstalledModel> InstallAsync(LeasedModel model, CachedModel files, CancellationToken ct)
    {
        var (root, problem) = OnnxFolders.RootOf(model);
        if (root is null)
        {
            throw new ModelNotRunnableException(problem!);
        }

        var sha = OnnxFolders.UnetSha256(model, root);
        var folder = root.Length == 0 ? files.Folder : files.PathOf(root.TrimEnd('/'));
        return Task.FromResult(new InstalledModel(sha, new ModelFolder(model.Name, folder, sha)));
    }

    public void Dispose() => _cache.Dispose();
}
