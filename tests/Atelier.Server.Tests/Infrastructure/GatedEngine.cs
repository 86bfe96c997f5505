using Atelier.Worker.Adapters;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>
/// An engine of the tests' own that stops halfway: it reports step <see cref="HeldAt"/> of the job's steps with a live
/// preview (a small PNG of one colour), then waits until the test calls <see cref="Release"/>, and answers one image of
/// the requested size per batch item. What a test sees while it waits is the running job's progress and preview.
/// </summary>
public sealed class GatedEngine : IEngineAdapter
{
    private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _held = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public const int HeldAt = 3;

    /// <summary>The preview the engine reports (16 × 16, one colour).</summary>
    public static byte[] Preview { get; } = Atelier.Engine.Images.Png.Encode([.. Enumerable.Repeat(new byte[] { 200, 120, 40 }, 256).SelectMany(x => x)], 16, 16);

    public string Name => "gated";

    /// <summary>Done once a job has reached the held step.</summary>
    public Task Held => _held.Task;

    public void Release() => _release.TrySetResult();

    public Task<IReadOnlyList<EngineModel>> ListModelsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<EngineModel>>([]);

    public async Task<EngineResult> GenerateAsync(EngineJob job, IProgress<EngineProgress>? progress, CancellationToken ct)
    {
        progress?.Report(new EngineProgress(HeldAt, job.Steps, (double)HeldAt / job.Steps, Preview));
        _held.TrySetResult();
        await _release.Task.WaitAsync(ct);
        progress?.Report(new EngineProgress(job.Steps, job.Steps, 1));
        var first = job.Seed < 0 ? 1234 : job.Seed;
        var images = new List<byte[]>();
        var seeds = new List<long>();
        for (var i = 0; i < job.BatchSize; i++)
        {
            var rgb = new byte[job.Width * job.Height * 3];
            for (var p = 0; p < rgb.Length; p += 3)
            {
                var x = p / 3 % job.Width;
                var y = p / 3 / job.Width;
                (rgb[p], rgb[p + 1], rgb[p + 2]) = ((byte)(x * 255 / job.Width), (byte)(y * 255 / job.Height), (byte)(120 + (i * 40)));
            }

            images.Add(Atelier.Engine.Images.Png.Encode(rgb, job.Width, job.Height));
            seeds.Add(first + i);
        }

        return new EngineResult(images, seeds, "gated", [.. seeds.Select(s => $"{job.Prompt}\nSteps: {job.Steps}, Seed: {s}")]);
    }

    public void Dispose()
    {
    }
}
