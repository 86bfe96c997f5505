using System.Text.Json;
using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Tests;

/// <summary>
/// A1111's "SD upscale" img2img script: its arguments, its split_grid and combine_grid (reference values: A1111's two
/// functions written out in Python with PIL's paste-through-a-mask arithmetic), and the script through the tiny pipeline.
/// </summary>
public sealed class SdUpscaleTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-sdup-").FullName;

    private static JsonElement Args(string json) => JsonDocument.Parse(json).RootElement;

    [Fact]
    public void Arguments_AreReadAsA1111ReadsThem_AndWhatCannotRunIsRefused()
    {
        string[] upscalers = ["None", "Lanczos", "Nearest", "TinyScale"];
        Assert.True(SdUpscaleScript.Names("SD upscale"));
        Assert.True(SdUpscaleScript.Names(" sd upscale "));
        Assert.False(SdUpscaleScript.Names("loopback"));
        Assert.Equal(new SdUpscaleScript(64, "None", 2), SdUpscaleScript.FromArgs(null, upscalers));
        Assert.Equal(new SdUpscaleScript(32, "Lanczos", 1.5), SdUpscaleScript.FromArgs(Args("""["", 32, 1, 1.5]"""), upscalers));
        Assert.Equal(new SdUpscaleScript(64, "Nearest", 2), SdUpscaleScript.FromArgs(Args("""["", 64.0, 2.0, 2]"""), upscalers));
        Assert.Equal(new SdUpscaleScript(16, "TinyScale", 2), SdUpscaleScript.FromArgs(Args("""[null, 16, "tinyscale"]"""), upscalers));
        Assert.Contains("could not find upscaler 9", Assert.Throws<EngineRequestException>(() => SdUpscaleScript.FromArgs(Args("""["", 64, 9, 2]"""), upscalers)).Message, StringComparison.Ordinal);
        Assert.Throws<EngineRequestException>(() => SdUpscaleScript.FromArgs(Args("""["", 64, "SwinIR", 2]"""), upscalers));
        Assert.Throws<EngineRequestException>(() => SdUpscaleScript.FromArgs(Args("""["", -1, 0, 2]"""), upscalers));
        Assert.Throws<EngineRequestException>(() => SdUpscaleScript.FromArgs(Args("""["", 64, 0, 0]"""), upscalers));
        Assert.Equal([new("SD upscale overlap", 16), new("SD upscale upscaler", "TinyScale")], new SdUpscaleScript(16, "TinyScale", 2).InfoParameters());
    }

    [Fact]
    public void SplitAndCombine_FollowA1111sGrid_TheOverlapsBlendedByItsRamps()
    {
        const int w = 20, h = 14;
        var picture = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    picture[(((y * w) + x) * 3) + c] = (byte)(((x * 7) + (y * 13) + (c * 5)) % 256);
                }
            }
        }

        var grid = SdUpscaleScript.Split(picture, w, h, 8, 8, 3);
        // ⌈(20 − 3)/5⌉ = 4 columns at 0, 4, 8, 12 (the last flush with the edge), ⌈(14 − 3)/5⌉ = 3 rows at 0, 3, 6.
        Assert.Equal([0, 4, 8, 12], grid.Rows[0].Select(t => t.X));
        Assert.Equal([0, 3, 6], grid.Rows.Select(r => r[0].Y));
        Assert.Equal(12, grid.Count);
        // Unchanged tiles put back make the picture again.
        Assert.Equal(picture, SdUpscaleScript.Combine(grid));

        // Tile k brightened by 37·k, so each overlap blends two different tiles.
        var k = 0;
        var changed = grid with
        {
            Rows = [.. grid.Rows.Select(r => (IReadOnlyList<SdUpscaleScript.Tile>)[.. r.Select(t => t with { Rgb = [.. t.Rgb.Select(v => (byte)((v + (37 * k)) % 256))] }).Select(t => { k++; return t; })])],
        };
        var combined = SdUpscaleScript.Combine(changed);
        Assert.Equal(110299, combined.Sum(v => (long)v));
        Assert.Equal(48335424, combined.Select((v, i) => (long)(i + 1) * v).Sum() % 1000000007);
        Assert.Equal([39, 44, 49, 46, 51, 56, 53, 58, 63, 60, 65, 70, 67, 72, 77, 86, 91, 96, 106, 111, 116, 125, 130, 135, 132, 137, 142, 151, 156, 161],
            combined.AsSpan(3 * w * 3, 30).ToArray().Select(v => (int)v));
    }

    [Fact]
    public void Script_RunsThroughThePipeline_TileByTile()
    {
        TinyPipeline.Write(Path.Combine(_root, "tiny"));
        using var pipeline = DiffusionPipeline.Load(Path.Combine(_root, "tiny"), "tiny", "7777777777");
        var source = pipeline.Generate(new GenerationRequest { Prompt = "a fox", Steps = 2, Width = 64, Height = 64, Seed = 3, Sampler = "Euler" }, null, CancellationToken.None);
        var picture = PngDecoder.Decode(source.Images[0].Png);
        var progress = new List<(int Image, int Count)>();
        var request = new GenerationRequest
        {
            Prompt = "a fox", Steps = 2, Width = 64, Height = 64, Seed = 100, Sampler = "Euler", DenoisingStrength = 0.5,
            InitImage = (picture.Rgb, picture.Width, picture.Height), SdUpscale = new SdUpscaleScript(16, "Lanczos", 2),
        };
        var result = pipeline.Generate(request, p => progress.Add((p.Image, p.ImageCount)), CancellationToken.None);
        var image = Assert.Single(result.Images);
        var output = PngDecoder.Decode(image.Png);
        // 128×128 in 64×64 tiles overlapping by 16: ⌈112/48⌉ = 3 × 3 tiles, each an img2img of 2 × 0.5 steps.
        Assert.Equal((128, 128), (output.Width, output.Height));
        Assert.Equal(9, progress.Select(p => p.Image).Distinct().Count());
        Assert.All(progress, p => Assert.Equal(9, p.Count));
        Assert.Equal(100, image.Seed);
        Assert.Contains("Seed: 100", image.Infotext, StringComparison.Ordinal);
        Assert.Contains("SD upscale overlap: 16, SD upscale upscaler: Lanczos", image.Infotext, StringComparison.Ordinal);
        // The same seed draws the same (to ONNX Runtime's last bit on the CPU, whose threads may sum in another order);
        // each tile was redrawn (not the upscaled picture as it was).
        var again = PngDecoder.Decode(pipeline.Generate(request, null, CancellationToken.None).Images[0].Png).Rgb;
        Assert.True(again.Zip(output.Rgb).Max(p => Math.Abs(p.First - p.Second)) <= 2);
        var plain = Upscaling.Resize(picture.Rgb, 64, 64, 128, 128, "Lanczos");
        Assert.NotEqual(plain, output.Rgb);
        // "None" cuts the original as it is (A1111 upscales nothing then), even one smaller than a tile: its tiles are padded.
        var wide = Upscaling.Resize(picture.Rgb, 64, 64, 96, 80, "Lanczos");
        var none = pipeline.Generate(request with { InitImage = (wide, 96, 80), SdUpscale = new SdUpscaleScript(16, "None", 2) }, null, CancellationToken.None);
        var noneSize = PngDecoder.Decode(none.Images[0].Png);
        Assert.Equal((96, 80), (noneSize.Width, noneSize.Height));
        var small = Upscaling.Resize(picture.Rgb, 64, 64, 48, 40, "Lanczos");
        var padded = pipeline.Generate(request with { InitImage = (small, 48, 40), SdUpscale = new SdUpscaleScript(8, "None", 2) }, null, CancellationToken.None);
        var smallSize = PngDecoder.Decode(padded.Images[0].Png);
        Assert.Equal((48, 40), (smallSize.Width, smallSize.Height));

        // n_iter upscales from seed + k; too many tiles, or an overlap as wide as a tile, are refused.
        var two = pipeline.Generate(request with { Iterations = 2 }, null, CancellationToken.None);
        Assert.Equal([100L, 101L], two.Seeds);
        Assert.Throws<EngineRequestException>(() => pipeline.Generate(request with { SdUpscale = new SdUpscaleScript(64, "None", 2) }, null, CancellationToken.None));
        Assert.Throws<EngineRequestException>(() => pipeline.Generate(request with { SdUpscale = new SdUpscaleScript(0, "None", 8), Width = 8, Height = 8 }, null, CancellationToken.None));
        Assert.Throws<EngineRequestException>(() => pipeline.Generate(request with { InitImage = null }, null, CancellationToken.None));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
