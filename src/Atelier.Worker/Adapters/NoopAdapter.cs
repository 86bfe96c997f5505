using Atelier.Engine.Images;

namespace Atelier.Worker.Adapters;

/// <summary>
/// An engine that does no inference: each image is a small flat PNG after <paramref name="delay"/> spread over the steps.
/// For benchmarks and crash tests of the job pipeline, where the engine's own time would hide the pipeline's.
/// </summary>
public sealed class NoopAdapter(TimeSpan delay) : IEngineAdapter
{
    public string Name => "noop";

    public Task<IReadOnlyList<EngineModel>> ListModelsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<EngineModel>>([]);

    public async Task<EngineResult> GenerateAsync(EngineJob job, IProgress<EngineProgress>? progress, CancellationToken ct)
    {
        if (job.Prompt.Contains("[noop:fail]", StringComparison.Ordinal))
        {
            throw new EngineFailedException("the noop engine was asked to fail ([noop:fail] in the prompt)");
        }

        var steps = Math.Max(1, job.Steps);
        for (var i = 1; i <= steps; i++)
        {
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay / steps, ct);
            }

            ct.ThrowIfCancellationRequested();
            progress?.Report(new EngineProgress(i, steps, (double)i / steps));
        }

        var seed = job.Seed < 0 ? Random.Shared.NextInt64(0, uint.MaxValue) : job.Seed;
        var rgb = new byte[8 * 8 * 3];
        Array.Fill(rgb, (byte)(seed % 251));
        var images = new List<byte[]>();
        var seeds = new List<long>();
        var infotexts = new List<string>();
        for (var b = 0; b < Math.Max(1, job.BatchSize); b++)
        {
            var info = $"{job.Prompt}\nSteps: {steps}, Sampler: {job.Sampler}, Seed: {seed + b}, Size: 8x8, Model: noop";
            images.Add(Png.Encode(rgb, 8, 8, new Dictionary<string, string> { ["parameters"] = info }));
            seeds.Add(seed + b);
            infotexts.Add(info);
        }

        return new EngineResult(images, seeds, "noop", infotexts);
    }

    public void Dispose()
    {
    }
}
