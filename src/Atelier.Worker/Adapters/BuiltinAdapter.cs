using Atelier.Engine.Pipeline;

namespace Atelier.Worker.Adapters;

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
                using var lease = _cache.Rent(model);
                var pipeline = lease.Pipeline;
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
