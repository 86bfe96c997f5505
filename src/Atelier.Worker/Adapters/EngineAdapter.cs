using Atelier.Engine.Pipeline;

namespace Atelier.Worker.Adapters;

/// <summary>One generation job as every engine adapter takes it.</summary>
public sealed record EngineJob
{
    /// <summary>The model: a name, a title, a short (10) or full SHA-256.</summary>
    public required string Model { get; init; }
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
    /// <summary>Our own id for the job, used as the engine's task or prompt id where it has one.</summary>
    public string JobId { get; init; } = Guid.NewGuid().ToString("N");
}

public sealed record EngineProgress(int Step, int Steps, double Fraction);

public sealed record EngineResult(IReadOnlyList<byte[]> Images, IReadOnlyList<long> Seeds, string ModelHash, IReadOnlyList<string> Infotexts);

public sealed record EngineModel(string Name, string Title, string ShortHash, string? Sha256);

/// <summary>The engine failed the job; the message is the engine's own (it becomes <c>errMessage</c> of <c>b_predict_predictfail</c>).</summary>
public sealed class EngineFailedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// An engine a worker runs jobs on: the built-in one in process, or a client of an AUTOMATIC1111 or ComfyUI server the
/// user already runs. Chosen by <see cref="Name"/>.
/// </summary>
public interface IEngineAdapter : IDisposable
{
    string Name { get; }
    Task<IReadOnlyList<EngineModel>> ListModelsAsync(CancellationToken ct);
    Task<EngineResult> GenerateAsync(EngineJob job, IProgress<EngineProgress>? progress, CancellationToken ct);
}

/// <summary>The built-in ONNX engine, in process.</summary>
public sealed class BuiltinAdapter(string modelsDirectory, long memoryBudgetBytes = 8L << 30, bool useCuda = false) : IEngineAdapter
{
    private readonly PipelineCache _cache = new(memoryBudgetBytes, useCuda);

    public string Name => "builtin";

    public PipelineCache Cache => _cache;

    public Task<IReadOnlyList<EngineModel>> ListModelsAsync(CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<EngineModel>>([.. ModelEntry.Scan(modelsDirectory).Select(m => new EngineModel(m.Name, m.Title, m.ShortHash, m.Sha256))]);

    public Task<EngineResult> GenerateAsync(EngineJob job, IProgress<EngineProgress>? progress, CancellationToken ct)
    {
        var model = ModelEntry.Scan(modelsDirectory).FirstOrDefault(m => m.Matches(job.Model))
                    ?? throw new EngineFailedException($"model '{job.Model}' is not in {modelsDirectory}");
        return Task.Run(() =>
        {
            try
            {
                var pipeline = _cache.Get(model);
                var init = job.InitImagePng is null ? ((byte[], int, int)?)null : Engine.Images.ImageDecoder.Decode(job.InitImagePng, job.Width, job.Height);
                var result = pipeline.Generate(new GenerationRequest
                {
                    Prompt = job.Prompt, NegativePrompt = job.NegativePrompt, Seed = job.Seed, Sampler = job.Sampler, Schedule = job.Schedule,
                    Steps = job.Steps, CfgScale = job.CfgScale, Width = job.Width, Height = job.Height, BatchSize = job.BatchSize,
                    InitImage = init, DenoisingStrength = job.DenoisingStrength,
                }, p => progress?.Report(new EngineProgress(p.Step, p.Steps, (double)((p.Image * p.Steps) + p.Step) / (p.ImageCount * p.Steps))), ct);
                return new EngineResult([.. result.Images.Select(i => i.Png)], result.Seeds, result.ModelHash, [.. result.Images.Select(i => i.Infotext)]);
            }
            catch (EngineRequestException e)
            {
                throw new EngineFailedException(e.Message, e);
            }
            catch (InvalidDataException e)
            {
                throw new EngineFailedException($"init image: {e.Message}", e);
            }
        }, ct);
    }

    public void Dispose() => _cache.Dispose();
}
