using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Tests;

public sealed class CacheAndVariantTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-models-").FullName;

    private static GenerationRequest Small => new() { Prompt = "fox", Steps = 4, Width = 64, Height = 64, Seed = 1, Sampler = "Euler" };

    [Fact]
    public void Int64TimestepUnet_IsBoundByItsMetadataType()
    {
        var folder = Path.Combine(_root, "int64");
        TinyPipeline.Write(folder, new TinyPipelineOptions(Int64Timestep: true));
        using var pipeline = DiffusionPipeline.Load(folder, "int64", "1111111111");
        Assert.Single(pipeline.Generate(Small, null, CancellationToken.None).Images);
    }

    [Fact]
    public void CudaAsked_OnACpuBuild_FallsBackToCpu()
    {
        var folder = Path.Combine(_root, "cuda");
        TinyPipeline.Write(folder);
        using var pipeline = DiffusionPipeline.Load(folder, "cuda", "2222222222", useCuda: true);
        Assert.Equal("CPU", pipeline.ExecutionProvider); // the CPU package has no CUDA provider; a GPU build would say CUDA
        Assert.Single(pipeline.Generate(Small, null, CancellationToken.None).Images);
    }

    [Fact]
    public void Cache_EvictsLeastRecentlyUsed_AndTimesLoads()
    {
        foreach (var name in new[] { "a", "b", "c" })
        {
            TinyPipeline.Write(Path.Combine(_root, name));
        }

        var models = ModelEntry.Scan(_root).Where(m => m.Name is "a" or "b" or "c").ToList();
        var oneModel = Directory.EnumerateFiles(models[0].Folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        using var cache = new PipelineCache((oneModel * 2) + 1);
        cache.Get(models[0]);
        cache.Get(models[1]);
        cache.Get(models[0]); // a is now the most recent
        cache.Get(models[2]); // over budget: b goes
        Assert.Equal(["c", "a"], cache.LoadedNames);
        Assert.Equal(3, cache.Loads);
        Assert.True(cache.LastLoadTime > TimeSpan.Zero);
        Assert.True(models[0].Matches(models[0].ShortHash) && models[0].Matches(models[0].Title) && models[0].Matches("a"));
    }

    [Fact]
    public void Skip_EndsTheCurrentImageAndGoesOn()
    {
        var folder = Path.Combine(_root, "skip");
        TinyPipeline.Write(folder);
        using var pipeline = DiffusionPipeline.Load(folder, "skip", "3333333333");
        var steps = new List<(int Image, int Step)>();
        var skipOnce = true;
        var result = pipeline.Generate(Small with { Steps = 10, BatchSize = 2 }, p => steps.Add((p.Image, p.Step)), CancellationToken.None, () =>
        {
            if (skipOnce && steps.Count == 3)
            {
                skipOnce = false;
                return true;
            }

            return false;
        });
        Assert.Equal(2, result.Images.Count);
        Assert.Equal(3, steps.Count(s => s.Image == 0));
        Assert.Equal(10, steps.Count(s => s.Image == 1));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
