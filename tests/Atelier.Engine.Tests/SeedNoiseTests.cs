using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using Atelier.Engine.Sampling;

namespace Atelier.Engine.Tests;

/// <summary>A1111's ImageRNG: variation seeds (slerp), seed resize, ENSD, on the noise and through the pipeline.</summary>
public sealed class SeedNoiseTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-seeds-").FullName;

    private static float[] Draw(long seed, int n)
    {
        var x = new float[n];
        new TorchCpuRandom(seed).Fill(x);
        return x;
    }

    /// <summary>
    /// The NV generator against the values A1111 publishes for it (rng_philox: Generator(seed=0).randn((3, 4))), which are
    /// also what torch.randn(3, 4) gives on an NVIDIA GPU after torch.manual_seed(0).
    /// </summary>
    [Fact]
    public void Philox_GivesA1111sPublishedNvValues()
    {
        var values = new float[12];
        new PhiloxRandom(0).Fill(values);
        double[] expected = [-0.92466259, -0.42534415, -2.6438457, 0.14518388, -0.12086647, -0.57972564, -0.62285122, -0.32838709,
            -1.07454231, -0.36314407, -1.67105067, 2.26550497];
        Assert.Equal(expected, values.Select(v => (double)v), new Tolerance(5e-7));

        // Each call is the next offset: a second call is not the first again.
        var generator = new PhiloxRandom(0);
        var first = new float[12];
        var second = new float[12];
        generator.Fill(first);
        generator.Fill(second);
        Assert.Equal(values, first);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void NoVariation_IsTheSeedsFirstDraw_AndTheGeneratorGoesOn()
    {
        var latents = new float[4 * 8 * 8];
        var generator = SeedNoise.First(latents, 8, 8, seed: 42);
        var reference = new TorchCpuRandom(42);
        var expected = new float[latents.Length];
        reference.Fill(expected);
        Assert.Equal(expected, latents);
        var next = new float[latents.Length];
        var nextExpected = new float[latents.Length];
        generator.Fill(next);
        reference.Fill(nextExpected);
        Assert.Equal(nextExpected, next);
    }

    [Fact]
    public void Ensd_ReseedsTheSamplersNoise_NotTheInitialLatent()
    {
        var latents = new float[4 * 8 * 8];
        var generator = SeedNoise.First(latents, 8, 8, seed: 42, etaNoiseSeedDelta: 31337);
        Assert.Equal(Draw(42, latents.Length), latents);
        var next = new float[latents.Length];
        generator.Fill(next);
        Assert.Equal(Draw(42 + 31337, latents.Length), next);
    }

    [Fact]
    public void Variation_AtStrength0And1_IsTheSeedOrTheSubseed_AndBetweenTurnsEachColumnByItsShareOfTheAngle()
    {
        const int h = 8, w = 6, n = 4 * h * w;
        var zero = new float[n];
        SeedNoise.First(zero, h, w, seed: 1, subseed: 2, subseedStrength: 1e-9);
        Assert.Equal(Draw(1, n).Select(v => (double)v), zero.Select(v => (double)v), new Tolerance(1e-5));
        var one = new float[n];
        SeedNoise.First(one, h, w, seed: 1, subseed: 2, subseedStrength: 1);
        Assert.Equal(Draw(2, n).Select(v => (double)v), one.Select(v => (double)v), new Tolerance(1e-5));

        // Slerp along the height, per (channel, column), as A1111 normalizes dim 1 of a (C, H, W) tensor: each result column
        // is sin((1−v)ω)/sin ω · the seed's column + sin(vω)/sin ω · the subseed's, ω the angle between those two columns.
        var mid = new float[n];
        SeedNoise.First(mid, h, w, seed: 1, subseed: 2, subseedStrength: 0.3);
        var (low, high) = (Draw(1, n), Draw(2, n));
        for (var c = 0; c < 4; c++)
        {
            for (var x = 0; x < w; x++)
            {
                double[] Column(float[] t) => [.. Enumerable.Range(0, h).Select(y => (double)t[(c * h * w) + (y * w) + x])];
                var (l, hi, m) = (Column(low), Column(high), Column(mid));
                var omega = Math.Acos(Cos(l, hi));
                // The coefficients by least squares over the column (two unknowns, eight equations).
                double ll = l.Sum(v => v * v), hh = hi.Sum(v => v * v), lh = l.Zip(hi, (p, q) => p * q).Sum();
                double lm = l.Zip(m, (p, q) => p * q).Sum(), hm = hi.Zip(m, (p, q) => p * q).Sum();
                var det = (ll * hh) - (lh * lh);
                var a = ((lm * hh) - (hm * lh)) / det;
                var b = ((hm * ll) - (lm * lh)) / det;
                Assert.Equal(Math.Sin(0.7 * omega) / Math.Sin(omega), a, 3);
                Assert.Equal(Math.Sin(0.3 * omega) / Math.Sin(omega), b, 3);
            }
        }
    }

    [Fact]
    public void SeedResize_PastesTheNoiseOfTheOtherSize_IntoTheCentre_OrCropsIt()
    {
        // 8×8 latents (64×64 pixels) into 16×16: the centre block is the seed's 8×8 draw, the rest its 16×16 draw.
        var big = new float[4 * 16 * 16];
        SeedNoise.First(big, 16, 16, seed: 5, resizeFromWidth: 64, resizeFromHeight: 64);
        var small = Draw(5, 4 * 8 * 8);
        var full = Draw(5, 4 * 16 * 16);
        for (var c = 0; c < 4; c++)
        {
            for (var y = 0; y < 16; y++)
            {
                for (var x = 0; x < 16; x++)
                {
                    var inside = y is >= 4 and < 12 && x is >= 4 and < 12;
                    var expected = inside ? small[(c * 64) + ((y - 4) * 8) + (x - 4)] : full[(c * 256) + (y * 16) + x];
                    Assert.Equal(expected, big[(c * 256) + (y * 16) + x]);
                }
            }
        }

        // 16×16 into 8×8: the centre of the 16×16 draw.
        var cropped = new float[4 * 8 * 8];
        SeedNoise.First(cropped, 8, 8, seed: 5, resizeFromWidth: 128, resizeFromHeight: 128);
        Assert.Equal(full[(0 * 256) + (4 * 16) + 4], cropped[0]);
        Assert.Equal(full[(3 * 256) + (11 * 16) + 11], cropped[(3 * 64) + (7 * 8) + 7]);
    }

    [Fact]
    public void Pipeline_VariationKeepsTheSeed_CountsTheSubseedsUp_AndWritesA1111sInfotext()
    {
        var folder = Path.Combine(_root, "tiny");
        TinyPipeline.Write(folder);
        using var pipeline = DiffusionPipeline.Load(folder, "tiny", "7777777777");
        var baseRequest = new GenerationRequest { Prompt = "fox", Steps = 4, Width = 64, Height = 64, Seed = 10, Sampler = "Euler", BatchSize = 2 };

        var varied = pipeline.Generate(baseRequest with { Subseed = 20, SubseedStrength = 0.25 }, null, CancellationToken.None);
        Assert.Equal([10L, 10L], varied.Seeds);
        Assert.Equal([20L, 21L], varied.Subseeds!);
        Assert.Contains("Seed: 10, Size: 64x64, Model hash: 7777777777, Model: tiny, Variation seed: 21, Variation seed strength: 0.25", varied.Images[1].Infotext, StringComparison.Ordinal);
        var plain = pipeline.Generate(baseRequest, null, CancellationToken.None);
        Assert.Equal([10L, 11L], plain.Seeds);
        Assert.DoesNotContain("Variation seed", plain.Images[0].Infotext, StringComparison.Ordinal);
        Assert.NotEqual(PngDecoder.Decode(plain.Images[0].Png).Rgb, PngDecoder.Decode(varied.Images[0].Png).Rgb);

        // All the way to the variation seed: the picture of that seed (Euler draws no noise after the first).
        var all = pipeline.Generate(baseRequest with { BatchSize = 1, Subseed = 33, SubseedStrength = 1 }, null, CancellationToken.None);
        var of33 = pipeline.Generate(baseRequest with { BatchSize = 1, Seed = 33 }, null, CancellationToken.None);
        Assert.Equal(PngDecoder.Decode(of33.Images[0].Png).Rgb, PngDecoder.Decode(all.Images[0].Png).Rgb);

        // ENSD changes what an ancestral sampler draws after the first noise, and is written only where it is used.
        var ancestral = baseRequest with { BatchSize = 1, Sampler = "Euler a" };
        var withEnsd = pipeline.Generate(ancestral with { EtaNoiseSeedDelta = 31337 }, null, CancellationToken.None);
        Assert.NotEqual(PngDecoder.Decode(pipeline.Generate(ancestral, null, CancellationToken.None).Images[0].Png).Rgb, PngDecoder.Decode(withEnsd.Images[0].Png).Rgb);
        Assert.Contains("ENSD: 31337", withEnsd.Images[0].Infotext, StringComparison.Ordinal);
        var euler = pipeline.Generate(baseRequest with { BatchSize = 1, EtaNoiseSeedDelta = 31337 }, null, CancellationToken.None);
        Assert.DoesNotContain("ENSD", euler.Images[0].Infotext, StringComparison.Ordinal);
        Assert.Equal(PngDecoder.Decode(plain.Images[0].Png).Rgb, PngDecoder.Decode(euler.Images[0].Png).Rgb);

        var resized = pipeline.Generate(baseRequest with { BatchSize = 1, SeedResizeFromWidth = 128, SeedResizeFromHeight = 96 }, null, CancellationToken.None);
        Assert.Contains("Seed resize from: 128x96", resized.Images[0].Infotext, StringComparison.Ordinal);
        Assert.Throws<EngineRequestException>(() => pipeline.Generate(baseRequest with { SubseedStrength = 1.5 }, null, CancellationToken.None));

        // randn_source: GPU (A1111's default) and NV draw alike; CPU draws otherwise and is written as "RNG: CPU".
        var one = baseRequest with { BatchSize = 1 };
        var gpu = pipeline.Generate(one, null, CancellationToken.None);
        var nv = pipeline.Generate(one with { RandnSource = "NV" }, null, CancellationToken.None);
        var cpu = pipeline.Generate(one with { RandnSource = "cpu" }, null, CancellationToken.None);
        Assert.Equal(PngDecoder.Decode(gpu.Images[0].Png).Rgb, PngDecoder.Decode(nv.Images[0].Png).Rgb);
        Assert.NotEqual(PngDecoder.Decode(gpu.Images[0].Png).Rgb, PngDecoder.Decode(cpu.Images[0].Png).Rgb);
        Assert.DoesNotContain("RNG:", gpu.Images[0].Infotext, StringComparison.Ordinal);
        Assert.Contains("RNG: NV", nv.Images[0].Infotext, StringComparison.Ordinal);
        Assert.Contains("RNG: CPU", cpu.Images[0].Infotext, StringComparison.Ordinal);
        Assert.Throws<EngineRequestException>(() => pipeline.Generate(one with { RandnSource = "TPU" }, null, CancellationToken.None));
    }

    private static double Cos(double[] a, double[] b) =>
        a.Zip(b, (x, y) => x * y).Sum() / Math.Sqrt(a.Sum(x => x * x) * b.Sum(y => y * y));

    private sealed class Tolerance(double epsilon) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= epsilon;
        public int GetHashCode(double obj) => 0;
    }

    public void Dispose()
    {
        Directory.Delete(_root, recursive: true);
        GC.SuppressFinalize(this);
    }
}
