using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Tests;

/// <summary>A1111's hires fix: sizes (scale; resize with the first pass's aspect and a centred crop), upscalers, the second pass's steps, the infotext.</summary>
public sealed class HiresFixTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-hires-").FullName;
    private readonly DiffusionPipeline _pipeline;

    public HiresFixTests()
    {
        TinyPipeline.Write(Path.Combine(_root, "tiny"));
        _pipeline = DiffusionPipeline.Load(Path.Combine(_root, "tiny"), "tiny", "8888888888");
    }

    private static GenerationRequest Request(HiresFix hires, double strength = 0.5) =>
        new() { Prompt = "a fox", Steps = 4, Width = 64, Height = 64, Seed = 3, Sampler = "Euler", DenoisingStrength = strength, Hires = hires };

    private (GenerationResult Result, int Steps, int Total) Run(GenerationRequest request)
    {
        var steps = 0;
        var total = 0;
        var result = _pipeline.Generate(request, p =>
        {
            steps++;
            total = p.Steps;
        }, CancellationToken.None);
        return (result, steps, total);
    }

    [Fact]
    public void LatentScale_MakesTheBiggerPicture_WithTheSecondPassStepsAndA1111sInfotext()
    {
        var (result, steps, total) = Run(Request(new HiresFix { Scale = 2, SecondPassSteps = 3 }));
        var image = PngDecoder.Decode(result.Images[0].Png);
        Assert.Equal((128, 128), (image.Width, image.Height));
        Assert.Equal((7, 7), (steps, total));
        Assert.Contains("Size: 64x64, Model hash: 8888888888, Model: tiny, Denoising strength: 0.5, Hires upscale: 2, Hires steps: 3, Hires upscaler: Latent, Version: atelier",
            result.Images[0].Infotext, StringComparison.Ordinal);
    }

    [Fact]
    public void Resize_KeepsTheAspectAndCropsTheCentre_AndThePictureUpscalersDecodeAndEncode()
    {
        var (resized, _, _) = Run(Request(new HiresFix { ResizeX = 160, ResizeY = 96, Upscaler = "Latent (nearest)" }));
        var image = PngDecoder.Decode(resized.Images[0].Png);
        Assert.Equal((160, 96), (image.Width, image.Height));
        Assert.Contains("Hires resize: 160x96", resized.Images[0].Infotext, StringComparison.Ordinal);

        var (lanczos, steps, _) = Run(Request(new HiresFix { Scale = 1.5, Upscaler = "lanczos" }));
        Assert.Equal((96, 96), (PngDecoder.Decode(lanczos.Images[0].Png).Width, PngDecoder.Decode(lanczos.Images[0].Png).Height));
        Assert.Contains("Hires upscaler: Lanczos", lanczos.Images[0].Infotext, StringComparison.Ordinal);
        Assert.Equal(4 + 4, steps); // no hires steps given: the request's
    }

    [Fact]
    public void NoStrength_SkipsTheSecondPass_AndAnUnknownUpscalerIsRefusedByName()
    {
        var (result, steps, _) = Run(Request(new HiresFix { Scale = 2 }, strength: 0));
        Assert.Equal(128, PngDecoder.Decode(result.Images[0].Png).Width);
        Assert.Equal(4, steps);
        var refused = Assert.Throws<EngineRequestException>(() => Run(Request(new HiresFix { Upscaler = "R-ESRGAN 4x+" })));
        Assert.StartsWith("could not find upscaler named R-ESRGAN 4x+", refused.Message, StringComparison.Ordinal);
        Assert.Throws<EngineRequestException>(() => Run(Request(new HiresFix { Scale = 100 })));
    }

    [Fact]
    public void LatentResize_IsTorchsInterpolate()
    {
        // F.interpolate(t, size=(4, 4), mode="bilinear", align_corners=False) of [[1, 2], [3, 4]], and mode="nearest".
        float[] square = [.. Enumerable.Repeat(new float[] { 1, 2, 3, 4 }, 4).SelectMany(p => p)];
        var bilinear = DiffusionPipeline.LatentResize(square, 2, 2, 4, 4, "Latent");
        Assert.Equal([1f, 1.25f, 1.75f, 2f, 1.5f, 1.75f, 2.25f, 2.5f, 2.5f, 2.75f, 3.25f, 3.5f, 3f, 3.25f, 3.75f, 4f], bilinear[..16]);
        var nearest = DiffusionPipeline.LatentResize(square, 2, 2, 4, 4, "Latent (nearest)");
        Assert.Equal([1f, 1f, 2f, 2f, 1f, 1f, 2f, 2f, 3f, 3f, 4f, 4f, 3f, 3f, 4f, 4f], nearest[..16]);
    }

    public void Dispose()
    {
        _pipeline.Dispose();
        Directory.Delete(_root, recursive: true);
    }
}
