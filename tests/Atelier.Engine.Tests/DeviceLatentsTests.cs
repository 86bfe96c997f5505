using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using Atelier.Engine.Sampling;

namespace Atelier.Engine.Tests;

/// <summary>
/// Latents kept on the device between steps. On CUDA the small step graphs run there; here the same graphs, buffers and
/// bindings run on the CPU (<see cref="DeviceSettings.LatentsOnDevice"/> forced on), which is what tests can check: the
/// same pictures as the host loop, and the latents copied back once per pass instead of twice per step.
/// </summary>
public sealed class DeviceLatentsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-device-latents-").FullName;

    public static TheoryData<string> PlannedSamplers =>
        ["Euler", "Euler a", "DPM++ 2M", "DPM++ 2M SDE", "DDIM", "LCM", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ SDE", "Restart"];

    /// <summary>A smooth, nonlinear stand-in for a model's ε (enough to tell one update rule from another).</summary>
    private static void KnownModel(ReadOnlySpan<float> x, double sigma, int step, Span<float> eps)
    {
        for (var j = 0; j < x.Length; j++)
        {
            eps[j] = (float)((x[j] - (0.3 * Math.Sin(x[j] + j))) / Math.Sqrt((sigma * sigma) + 1));
        }
    }

    private static NoiseSource Seeded(int seed)
    {
        var random = new Random(seed);
        return target =>
        {
            for (var j = 0; j < target.Length; j++)
            {
                target[j] = (float)((random.NextDouble() * 2) - 1);
            }
        };
    }

    [Theory]
    [MemberData(nameof(PlannedSamplers))]
    public void LinearPlan_StepsAsItsSamplerRuns(string name)
    {
        var sampler = Sampler.Find(name)!;
        // 24 steps: Restart restarts from 20 on.
        var sigmas = sampler.SigmasFor("Automatic", new NoiseSchedule(1000, 0.00085, 0.012), 24);
        var plan = sampler.LinearPlan(sigmas);
        Assert.NotNull(plan);
        Assert.Equal(sampler.StepsOver(sigmas), plan.Count(s => s.EndsStep));

        var start = Enumerable.Range(0, 64).Select(j => (float)(Math.Cos(j * 0.7) * sigmas[0])).ToArray();
        var reference = start.ToArray();
        sampler.Run(reference, sigmas, KnownModel, Seeded(5), null, CancellationToken.None);

        // The plan applied as the step graph applies it: each stage's model call on its point, the noise drawn only
        // where the plan says, a stage that does not end its step making the next stage's point.
        var x = start.ToArray();
        var point = x;
        var eps = new float[x.Length];
        var previous = new float[x.Length];
        var denoised = new float[x.Length];
        var fresh = new float[x.Length];
        var noise = Seeded(5);
        for (var i = 0; i < plan.Length; i++)
        {
            var stage = plan[i];
            KnownModel(point, stage.Sigma, i, eps);
            if (stage.Noise != 0)
            {
                noise(fresh);
            }

            var made = new float[x.Length];
            for (var j = 0; j < x.Length; j++)
            {
                denoised[j] = (float)(point[j] - (stage.Sigma * eps[j]));
                made[j] = (float)((stage.X * x[j]) + (stage.Eps * eps[j]) + (stage.Denoised * denoised[j]) + (stage.Previous * (i == 0 ? 0 : previous[j]))
                                  + (stage.Point * point[j]) + (stage.Noise * fresh[j]));
            }

            if (stage.EndsStep)
            {
                x = made;
                point = x;
            }
            else
            {
                point = made;
            }

            (previous, denoised) = (denoised, previous);
        }

        var worst = x.Zip(reference, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst < 1e-3, $"{name}: the plan is {worst} away from the sampler");
        Assert.Contains(x, v => Math.Abs(v) > 0.01f);
    }

    [Theory]
    [InlineData("LMS")]
    [InlineData("PLMS")]
    [InlineData("DPM++ 3M SDE")]
    public void SamplersWithALongerHistory_HaveNoPlan(string name) =>
        Assert.Null(Sampler.Find(name)!.LinearPlan([14.6, 5, 1, 0.1, 0]));

    private (DiffusionPipeline Host, DiffusionPipeline Device) Load(TinyPipelineOptions? options = null)
    {
        var folder = Path.Combine(_root, Guid.NewGuid().ToString("N"));
        TinyPipeline.Write(folder, options ?? new TinyPipelineOptions(Heavy: true));
        return (DiffusionPipeline.Load(folder, "tiny", "6666666666", new DeviceSettings { LatentsOnDevice = false }),
            DiffusionPipeline.Load(folder, "tiny", "6666666666", new DeviceSettings { LatentsOnDevice = true }));
    }

    private static void AssertSamePicture(byte[] expected, byte[] actual, string what)
    {
        var a = PngDecoder.Decode(expected).Rgb;
        var b = PngDecoder.Decode(actual).Rgb;
        var diffs = a.Zip(b, (x, y) => Math.Abs(x - y)).ToArray();
        // Only the order of float operations differs (the update as one sum, in fp32): a level at most, here and there.
        Assert.True(diffs.Average() < 0.01 && diffs.Max() <= 2, $"{what}: mean {diffs.Average():F3}, max {diffs.Max()}");
        Assert.Contains(a, v => v is > 10 and < 245);
    }

    [Theory]
    [MemberData(nameof(PlannedSamplers))]
    public void OnTheDevice_TheLatentsComeBackOncePerPass_AndMakeTheHostLoopsPicture(string sampler)
    {
        var (host, device) = Load();
        using (host)
        using (device)
        {
            Assert.False(host.LatentsOnDevice);
            Assert.True(device.LatentsOnDevice);
            foreach (var request in new[]
                     {
                         new GenerationRequest { Prompt = "fox", Steps = 6, Width = 64, Height = 64, Seed = 11, Sampler = sampler, CfgScale = 7 },
                         new GenerationRequest { Prompt = "fox", Steps = 5, Width = 64, Height = 96, Seed = 12, Sampler = sampler, CfgScale = 1, BatchSize = 2 },
                     })
            {
                var (steps, readbacks) = (device.DeviceSteps, device.LatentReadbacks);
                var expected = host.Generate(request, null, CancellationToken.None);
                var actual = device.Generate(request, null, CancellationToken.None);
                for (var i = 0; i < request.BatchSize; i++)
                {
                    AssertSamePicture(expected.Images[i].Png, actual.Images[i].Png, $"{sampler}, cfg {request.CfgScale}, image {i}");
                }

                var perImage = Sampler.Find(sampler)!.StepsOver(Sampler.Find(sampler)!.SigmasFor(request.Schedule, new NoiseSchedule(1000, 0.00085, 0.012), request.Steps));
                Assert.Equal(request.BatchSize * perImage, device.DeviceSteps - steps);
                Assert.Equal(request.BatchSize, device.LatentReadbacks - readbacks);
            }

            Assert.Equal(0, host.DeviceSteps);
        }
    }

    [Fact]
    public void Restart_WithItsRestarts_MakesTheHostLoopsPicture()
    {
        var (host, device) = Load();
        using (host)
        using (device)
        {
            // From 20 steps on, Restart noises the latents back up and samples a stretch again.
            var request = new GenerationRequest { Prompt = "fox", Steps = 20, Width = 64, Height = 64, Seed = 17, Sampler = "Restart" };
            AssertSamePicture(host.Generate(request, null, CancellationToken.None).Images[0].Png,
                device.Generate(request, null, CancellationToken.None).Images[0].Png, "restart");
            var sigmas = Sampler.Find("Restart")!.SigmasFor("Automatic", new NoiseSchedule(1000, 0.00085, 0.012), 20);
            var plan = Sampler.Find("Restart")!.LinearPlan(sigmas)!;
            Assert.Contains(Enumerable.Range(1, plan.Length - 1), i => plan[i - 1].EndsStep && plan[i].Sigma > plan[i - 1].Sigma); // a restart
            Assert.Equal(Sampler.Find("Restart")!.StepsOver(sigmas), device.DeviceSteps);
        }
    }

    [Fact]
    public void ASamplerWithoutAPlan_RunsOnTheHost_OnTheSamePipeline()
    {
        var (host, device) = Load();
        using (host)
        using (device)
        {
            var request = new GenerationRequest { Prompt = "fox", Steps = 4, Width = 64, Height = 64, Seed = 3, Sampler = "LMS" };
            Assert.Equal(host.Generate(request, null, CancellationToken.None).Images[0].Png, device.Generate(request, null, CancellationToken.None).Images[0].Png);
            Assert.Equal(0, device.DeviceSteps);
            Assert.Equal(0, device.LatentReadbacks);
        }
    }

    [Fact]
    public void Fp16Models_CastAtTheGraphsEdges_GiveTheHostLoopsPicture()
    {
        var (host, device) = Load(new TinyPipelineOptions(Fp16: true));
        using (host)
        using (device)
        {
            Assert.Equal("fp16", device.Precision);
            var request = new GenerationRequest { Prompt = "fox", Steps = 5, Width = 128, Height = 128, Seed = 4, Sampler = "DPM++ 2M" };
            AssertSamePicture(host.Generate(request, null, CancellationToken.None).Images[0].Png,
                device.Generate(request, null, CancellationToken.None).Images[0].Png, "fp16");
            Assert.Equal(5, device.DeviceSteps);
        }
    }

    [Fact]
    public void Previews_ReadTheLatentsBack_OnlyWhenAskedFor_AndNotAfterThePass()
    {
        var (host, device) = Load();
        using (host)
        using (device)
        {
            var request = new GenerationRequest { Prompt = "fox", Steps = 6, Width = 64, Height = 64, Seed = 8, Sampler = "Euler a" };
            var hostPreviews = new List<byte[]>();
            host.Generate(request, p => hostPreviews.Add(p.PreviewPng()!), CancellationToken.None);

            var devicePreviews = new List<byte[]>();
            GenerationProgress? last = null;
            device.Generate(request, p =>
            {
                Assert.Null(p.Latents);
                if (p.Step % 2 == 0)
                {
                    devicePreviews.Add(p.PreviewPng()!);
                }

                last = p;
            }, CancellationToken.None);

            // Three previews asked for, plus the pass's own read at its end.
            Assert.Equal(4, device.LatentReadbacks);
            Assert.Equal(3, devicePreviews.Count);
            for (var i = 0; i < devicePreviews.Count; i++)
            {
                AssertSamePicture(hostPreviews[(2 * i) + 1], devicePreviews[i], $"preview after step {(2 * i) + 2}");
            }

            // A progress kept past its pass (as the A1111 progress route keeps the latest) reads nothing: the buffers are gone.
            Assert.Null(last!.ReadLatents!());
            Assert.Null(last.PreviewPng());
            Assert.Equal(4, device.LatentReadbacks);
        }
    }

    [Fact]
    public void ASkippedImage_IsReadBackWhereTheSkipStoppedIt()
    {
        var (host, device) = Load();
        using (host)
        using (device)
        {
            var request = new GenerationRequest { Prompt = "fox", Steps = 8, Width = 64, Height = 64, Seed = 21, Sampler = "DPM++ 2M" };
            byte[] Run(DiffusionPipeline pipeline)
            {
                var steps = 0;
                return pipeline.Generate(request, _ => steps++, CancellationToken.None, () => steps == 3).Images[0].Png;
            }

            var full = device.Generate(request, null, CancellationToken.None).Images[0].Png;
            var skipped = Run(device);
            AssertSamePicture(Run(host), skipped, "skipped after 3 steps");
            Assert.NotEqual(full, skipped);
            Assert.Equal(8 + 3, device.DeviceSteps);
            Assert.Equal(2, device.LatentReadbacks);
        }
    }

    [Fact]
    public void TheHiresFix_ReadsBackBetweenItsPasses_AndMakesTheHostLoopsPicture()
    {
        var (host, device) = Load();
        using (host)
        using (device)
        {
            var request = new GenerationRequest
            {
                Prompt = "fox", Steps = 4, Width = 64, Height = 64, Seed = 3, Sampler = "Euler", DenoisingStrength = 0.5,
                Hires = new HiresFix { Scale = 2, SecondPassSteps = 3 },
            };
            AssertSamePicture(host.Generate(request, null, CancellationToken.None).Images[0].Png,
                device.Generate(request, null, CancellationToken.None).Images[0].Png, "hires");
            Assert.Equal(4 + 3, device.DeviceSteps);
            Assert.Equal(2, device.LatentReadbacks);
        }
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
