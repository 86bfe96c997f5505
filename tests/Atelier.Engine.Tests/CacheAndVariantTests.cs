using Atelier.Engine.Images;
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
    public void Fp16Pipeline_IsDetectedFromItsInputTypes_AndGivesThePictureOfItsFp32Twin()
    {
        var fp32 = Path.Combine(_root, "fp32");
        var fp16 = Path.Combine(_root, "fp16");
        TinyPipeline.Write(fp32);
        TinyPipeline.Write(fp16, new TinyPipelineOptions(Fp16: true));
        using var full = DiffusionPipeline.Load(fp32, "fp32", "3333333333");
        using var half = DiffusionPipeline.Load(fp16, "fp16", "4444444444");
        Assert.Equal("fp32", full.Precision);
        Assert.Equal("fp16", half.Precision);
        var request = Small with { Width = 128, Height = 128 };
        var a = PngDecoder.Decode(full.Generate(request, null, CancellationToken.None).Images[0].Png);
        var b = PngDecoder.Decode(half.Generate(request, null, CancellationToken.None).Images[0].Png);
        // Half precision at the models' edges only (the sampler's arithmetic stays fp32): under a level of 255 on average,
        // a few levels at worst. A wrong conversion (bytes read as the other type) would give noise, tens of levels off.
        var diffs = a.Rgb.Zip(b.Rgb, (x, y) => Math.Abs(x - y)).ToArray();
        Assert.True(diffs.Average() < 1.0, $"mean difference {diffs.Average():F2}");
        Assert.InRange(diffs.Max(), 0, 16);
        Assert.NotEqual(0, a.Rgb.Select(v => (int)v).Sum());
    }

    /// <summary>
    /// The weight that makes a tiny model's load dear (for measuring hot-model scheduling on a CPU) is really in the
    /// UNet and really read at load, and changes nothing in the picture: the same bytes as the model without it.
    /// </summary>
    [Fact]
    public void WeightsMiB_MakeTheUnetThatLarge_AndLeaveThePictureAsItIs()
    {
        var light = Path.Combine(_root, "light");
        var weighty = Path.Combine(_root, "weighty");
        TinyPipeline.Write(light, new TinyPipelineOptions(Heavy: true));
        TinyPipeline.Write(weighty, new TinyPipelineOptions(Heavy: true, WeightsMiB: 2));
        var extra = new FileInfo(Path.Combine(weighty, "unet", "model.onnx")).Length - new FileInfo(Path.Combine(light, "unet", "model.onnx")).Length;
        Assert.InRange(extra, 2L << 20, (2L << 20) + 4096);
        using var a = DiffusionPipeline.Load(light, "light", "6666666666");
        using var b = DiffusionPipeline.Load(weighty, "weighty", "7777777777");
        // The pixels (the PNGs' text differs: it names the model).
        Assert.Equal(PngDecoder.Decode(a.Generate(Small, null, CancellationToken.None).Images[0].Png).Rgb,
            PngDecoder.Decode(b.Generate(Small, null, CancellationToken.None).Images[0].Png).Rgb);
    }

    [Fact]
    public void IoBinding_GivesTheSameBytesAsPlainRuns()
    {
        // On CUDA the UNet's inputs are bound (the conditioning stays on the device); the same code runs here on the CPU.
        var folder = Path.Combine(_root, "bound");
        TinyPipeline.Write(folder, new TinyPipelineOptions(Heavy: true));
        using var plain = DiffusionPipeline.Load(folder, "bound", "5555555555", new DeviceSettings { IoBinding = false });
        using var bound = DiffusionPipeline.Load(folder, "bound", "5555555555", new DeviceSettings { IoBinding = true });
        foreach (var request in new[] { Small, Small with { CfgScale = 1, Sampler = "DPM++ 2M", Seed = 9 } })
        {
            Assert.Equal(plain.Generate(request, null, CancellationToken.None).Images[0].Png, bound.Generate(request, null, CancellationToken.None).Images[0].Png);
        }
    }

    [Theory]
    [InlineData("cpu", false, 0)]
    [InlineData("CUDA", true, 0)]
    [InlineData("cuda:3", true, 3)]
    [InlineData(" cuda:63 ", true, 63)]
    public void Device_Parses(string text, bool cuda, int ordinal) => Assert.Equal(new EngineDevice(cuda, ordinal), EngineDevice.Parse(text));

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:64")]
    [InlineData("cuda:1:2")]
    [InlineData("")]
    public void Device_RefusesWhatIsNotOne(string text) => Assert.Null(EngineDevice.Parse(text));

    [Fact]
    public void Cuda_OnTheCpuBuild_IsRefusedWithTheBuildCommand_OrFallsBackWhenAsked()
    {
        Assert.DoesNotContain(ExecutionProviders.CudaProvider, ExecutionProviders.Available); // the tests run the CPU build
        var refused = Assert.Throws<DeviceUnavailableException>(() => ExecutionProviders.Start(new DeviceSettings { Device = new EngineDevice(true, 1) }));
        Assert.Contains("--device cuda:1 needs the GPU build", refused.Message, StringComparison.Ordinal);
        Assert.Contains("-p:AtelierGpu=cuda", refused.Message, StringComparison.Ordinal);
        Assert.Contains("--device-fallback", refused.Message, StringComparison.Ordinal);

        var fallback = ExecutionProviders.Start(new DeviceSettings { Device = new EngineDevice(true, 1), FallBackToCpu = true });
        Assert.Equal(EngineDevice.Cpu, fallback.Device);
        Assert.Equal(ExecutionProviders.CpuProvider, fallback.Provider);
        Assert.Contains("running on the CPU instead", fallback.Warning, StringComparison.Ordinal);

        var folder = Path.Combine(_root, "fallback");
        TinyPipeline.Write(folder);
        using var pipeline = DiffusionPipeline.Load(folder, "fallback", "2222222222", fallback.Settings);
        Assert.Equal("CPU", pipeline.ExecutionProvider);
        Assert.Single(pipeline.Generate(Small, null, CancellationToken.None).Images);

        // Loading straight onto CUDA without starting it first is an error from ONNX Runtime, not a silent CPU run.
        Assert.ThrowsAny<Exception>(() => DiffusionPipeline.Load(folder, "fallback", "2222222222", new DeviceSettings { Device = new EngineDevice(true, 0) }));
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
        cache.Rent(models[0]).Dispose();
        cache.Rent(models[1]).Dispose();
        cache.Rent(models[0]).Dispose(); // a is now the most recent
        cache.Rent(models[2]).Dispose(); // over budget: b goes
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

    [Fact]
    public void Dispose_DuringAGeneration_FreesTheSessionsOnlyWhenItReturns()
    {
        var folder = Path.Combine(_root, "retire");
        TinyPipeline.Write(folder);
        var pipeline = DiffusionPipeline.Load(folder, "retire", "4444444444");
        // Disposed from inside the run (as another thread's Dispose would land between two UNet calls): freeing the
        // native sessions there would make the next call use freed memory.
        var result = pipeline.Generate(Small with { Steps = 6, BatchSize = 2 }, p =>
        {
            if (p.Step == 2)
            {
                pipeline.Dispose();
            }
        }, CancellationToken.None);
        Assert.Equal(2, result.Images.Count);
        Assert.Throws<ObjectDisposedException>(() => pipeline.Generate(Small, null, CancellationToken.None));
    }

    [Fact]
    public void EvictedPipeline_StaysUsableUntilItsLeaseEnds()
    {
        TinyPipeline.Write(Path.Combine(_root, "x"));
        TinyPipeline.Write(Path.Combine(_root, "y"));
        var models = ModelEntry.Scan(_root).Where(m => m.Name is "x" or "y").ToList();
        var oneModel = Directory.EnumerateFiles(models[0].Folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        var cache = new PipelineCache(oneModel + 1);
        var x = cache.Rent(models[0]);
        using (var y = cache.Rent(models[1])) // over budget: x is evicted while leased
        {
            Assert.Equal(["y"], cache.LoadedNames);
            Assert.Single(x.Pipeline.Generate(Small, null, CancellationToken.None).Images);
            cache.Dispose(); // y is leased too: freed when its lease ends
            Assert.Single(y.Pipeline.Generate(Small, null, CancellationToken.None).Images);
            Assert.Throws<ObjectDisposedException>(() => cache.Rent(models[0]));
        }

        x.Dispose();
        Assert.Throws<ObjectDisposedException>(() => x.Pipeline.Generate(Small, null, CancellationToken.None));
    }

    [Fact]
    public void CancelAfterTheLastStep_StopsTheDecoder_AsACancellation()
    {
        var folder = Path.Combine(_root, "cancel");
        TinyPipeline.Write(folder);
        using var pipeline = DiffusionPipeline.Load(folder, "cancel", "5555555555");
        using var cts = new CancellationTokenSource();
        // The terminate flag is set before the VAE decoder runs, so ONNX Runtime refuses that call: it must read as a
        // cancellation (an interrupt), not as an engine failure.
        Assert.ThrowsAny<OperationCanceledException>(() => pipeline.Generate(Small, p =>
        {
            if (p.Step == p.Steps)
            {
                cts.Cancel();
            }
        }, cts.Token));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
