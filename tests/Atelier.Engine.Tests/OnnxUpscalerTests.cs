using Atelier.Engine.Images;
using Atelier.Engine.Lora;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Tests;

/// <summary>
/// ONNX upscaler models (ESRGAN's interface) as A1111 runs them: in tiles with context, again while smaller than the
/// target, then Lanczos to the size; for extras and for the hires fix. The tiny upscaler makes each pixel a 2×2 block
/// at half its value, so every output pixel is known.
/// </summary>
public sealed class OnnxUpscalerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-upscaler-").FullName;
    private readonly NetworkFile _model;

    public OnnxUpscalerTests()
    {
        var path = Path.Combine(_root, "ESRGAN", "tinyscale.onnx");
        TinyPipeline.WriteUpscaler(path);
        _model = new NetworkFile("tinyscale", path);
    }

    private static byte[] Picture(int w, int h)
    {
        var rgb = new byte[w * h * 3];
        for (var i = 0; i < rgb.Length; i++)
        {
            rgb[i] = (byte)((i * 7) % 251);
        }

        return rgb;
    }

    [Fact]
    public void Tiles_MeetWithoutSeams_EveryPixelIsTheModels()
    {
        // 300×200 is two tiles across and two down (192 with 8 of context): the result is the model's everywhere.
        var rgb = Picture(300, 200);
        using var model = OnnxUpscaler.Open(_model.Path);
        var (up, w, h) = model.Upscale(rgb, 300, 200);
        Assert.Equal((600, 400), (w, h));
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                for (var c = 0; c < 3; c++)
                {
                    var expected = (byte)Math.Round(rgb[((((y / 2) * 300) + (x / 2)) * 3) + c] * 0.5, MidpointRounding.AwayFromZero);
                    Assert.True(Math.Abs(expected - up[(((y * w) + x) * 3) + c]) <= 1, $"({x}, {y}) channel {c}");
                }
            }
        }

        // Again while smaller than the target (300 → 600 → 1200), then Lanczos to it.
        Assert.Equal(1000 * 700 * 3, model.Resize(rgb, 300, 200, 1000, 700).Length);
    }

    [Fact]
    public void HiresFix_AndExtras_TakeItByName()
    {
        TinyPipeline.Write(Path.Combine(_root, "tiny"));
        using var pipeline = DiffusionPipeline.Load(Path.Combine(_root, "tiny"), "tiny", "1111111111");
        var request = new GenerationRequest
        {
            Prompt = "a fox", Steps = 2, Width = 64, Height = 64, Seed = 2, Sampler = "Euler", DenoisingStrength = 0.5,
            Hires = new HiresFix { Scale = 2, Upscaler = "TinyScale" }, Upscalers = [_model],
        };
        var result = pipeline.Generate(request, null, CancellationToken.None);
        Assert.Equal(128, PngDecoder.Decode(result.Images[0].Png).Width);
        Assert.Contains("Hires upscaler: tinyscale", result.Images[0].Infotext, StringComparison.Ordinal);
        var refused = Assert.Throws<EngineRequestException>(() => pipeline.Generate(request with { Upscalers = [] }, null, CancellationToken.None));
        Assert.StartsWith("could not find upscaler named TinyScale", refused.Message, StringComparison.Ordinal);

        // Extras: the model's picture at the asked scale.
        var rgb = Picture(16, 8);
        var body = System.Text.Json.JsonSerializer.SerializeToElement(new { upscaler_1 = "tinyscale", upscaling_resize = 2 });
        var extras = PngDecoder.Decode(Upscaling.Run(body, Png.Encode(rgb, 16, 8), [_model]).Png);
        Assert.Equal((32, 16), (extras.Width, extras.Height));
        Assert.Equal((byte)Math.Round(rgb[0] * 0.5, MidpointRounding.AwayFromZero), extras.Rgb[0]);
        Assert.Throws<ArgumentException>(() => Upscaling.Run(body, Png.Encode(rgb, 16, 8)));
    }

    [Fact]
    public void AModelThatIsNotAnUpscaler_IsRefusedByName()
    {
        TinyPipeline.Write(Path.Combine(_root, "tiny"));
        Assert.Throws<InvalidDataException>(() => OnnxUpscaler.Open(Path.Combine(_root, "tiny", "text_encoder", "model.onnx")));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
