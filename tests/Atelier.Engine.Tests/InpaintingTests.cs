using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using SkiaSharp;

namespace Atelier.Engine.Tests;

/// <summary>
/// Inpainting as AUTOMATIC1111 does it: the mask read (alpha or luminance), blurred as OpenCV does, the "only masked"
/// box, the fill, and in the pipeline the kept latents held to the init's and the original laid back over the result.
/// </summary>
public sealed class InpaintingTests : IDisposable
{
    private static readonly byte[] Red = [200, 30, 30], Blue = [20, 40, 220];
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-inpaint-").FullName;
    private readonly DiffusionPipeline _pipeline;

    public InpaintingTests()
    {
        TinyPipeline.Write(Path.Combine(_root, "tiny"));
        _pipeline = DiffusionPipeline.Load(Path.Combine(_root, "tiny"), "tiny", "7777777777");
    }

    private static byte[] Rgb(int w, int h, Func<int, int, byte[]> colour)
    {
        var rgb = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                colour(x, y).CopyTo(rgb, ((y * w) + x) * 3);
            }
        }

        return rgb;
    }

    private static byte[] Gray(int w, int h, Func<int, int, bool> masked)
    {
        var gray = new byte[w * h];
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                gray[(y * w) + x] = masked(x, y) ? (byte)255 : (byte)0;
            }
        }

        return gray;
    }

    private static byte[] Pixel(byte[] rgb, int w, int x, int y) => rgb.AsSpan(((y * w) + x) * 3, 3).ToArray();

    [Fact]
    public void GaussianBlur_IsOpenCvs_SevenTapKernelForSigmaOne()
    {
        // cv2.getGaussianKernel(7, 1) = [0.00443305, 0.05400558, 0.24203623, 0.39905028, …] (ksize 2·⌊2.5·1 + 0.5⌋ + 1 = 7):
        // an impulse of 255 becomes 255 × those, rounded.
        var row = new byte[15];
        row[7] = 255;
        var blurred = Inpainting.GaussianBlur(row, 15, 1, 1, horizontal: true);
        Assert.Equal([0, 0, 0, 0, 1, 14, 62, 102, 62, 14, 1, 0, 0, 0, 0], blurred);
        // At the edge the picture is reflected without its edge pixel (BORDER_REFLECT_101): the tap at −1 reads pixel 1
        // too, so pixel 0 gets 2 × 0.24203623 × 255 = 123.4.
        var edge = new byte[8];
        edge[1] = 255;
        Assert.Equal(123, Inpainting.GaussianBlur(edge, 8, 1, 1, horizontal: true)[0]);
        // Vertically the same.
        Assert.Equal([.. blurred], Inpainting.GaussianBlur(row, 1, 15, 1, horizontal: false));
    }

    [Fact]
    public void OnlyMaskedBox_IsPaddedThenWidenedToTheJobsAspect_InsideThePicture()
    {
        var mask = Gray(100, 100, (x, y) => x is >= 10 and < 30 && y is >= 20 and < 30);
        Assert.Equal((10, 20, 30, 30), Inpainting.BoundingBox(mask, 100, 100));
        Assert.Null(Inpainting.BoundingBox(new byte[16], 4, 4));
        // 20×10 for a square job: 10 rows more, 5 each side (A1111's expand_crop_region).
        Assert.Equal((10, 15, 30, 35), Inpainting.ExpandToAspect((10, 20, 30, 30), 64, 64, 100, 100));
        // Against the bottom edge: moved up by what it crosses.
        Assert.Equal((0, 80, 20, 100), Inpainting.ExpandToAspect((0, 90, 20, 100), 64, 64, 100, 100));
        // Tall box, wide job (2:1): widened to 40 columns about its centre.
        Assert.Equal((40, 0, 80, 20), Inpainting.ExpandToAspect((50, 0, 70, 20), 128, 64, 100, 100));
    }

    [Fact]
    public void Fill_PaintsTheMaskedAreaWithTheColoursAroundIt_AndLeavesTheRestAlone()
    {
        // Left half red, right half blue; the right half masked: fill paints it from the red around it.
        var rgb = Rgb(32, 16, (x, _) => x < 16 ? Red : Blue);
        var filled = Inpainting.FillMasked(rgb, Gray(32, 16, (x, _) => x >= 16), 32, 16);
        Assert.Equal(Red, Pixel(filled, 32, 3, 8));
        var far = Pixel(filled, 32, 30, 8);
        Assert.InRange(far[0], Red[0] - 8, Red[0] + 8);
        Assert.InRange(far[2], Red[2] - 8, Red[2] + 8);
    }

    [Fact]
    public void Mask_IsItsAlphaWhenTransparent_ElseItsLuminance()
    {
        // A transparent mask: A1111 reads the alpha channel (opaque is masked), whatever the colour.
        using var transparent = new SKBitmap(new SKImageInfo(4, 1, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        transparent.SetPixel(0, 0, new SKColor(0, 0, 0, 255));
        transparent.SetPixel(1, 0, new SKColor(255, 255, 255, 0));
        transparent.SetPixel(2, 0, new SKColor(0, 0, 0, 200));
        transparent.SetPixel(3, 0, new SKColor(255, 255, 255, 0));
        var (alpha, _, _) = Inpainting.DecodeMask(transparent.Encode(SKEncodedImageFormat.Png, 100).ToArray());
        Assert.Equal([255, 0, 200, 0], alpha);
        // Opaque: ITU-R 601 luminance, as PIL's convert('L'): pure red is 76, green 150, blue 29.
        var (luma, _, _) = Inpainting.DecodeMask(Png.Encode([255, 0, 0, 0, 255, 0, 0, 0, 255], 3, 1));
        Assert.Equal([76, 150, 29], luma);
    }

    private GenerationResult Inpaint(string prompt, InpaintPlan plan, double strength = 1) => _pipeline.Generate(new GenerationRequest
    {
        Prompt = prompt, Steps = 4, Width = 64, Height = 64, Seed = 11, Sampler = "Euler", DenoisingStrength = strength, Inpaint = plan,
    }, null, CancellationToken.None);

    [Fact]
    public void KeptLatents_AreTheInitsWhateverThePrompt_WhileTheMaskedOnesFollowIt()
    {
        // Left half masked, no blur, "latent nothing": the latents start from zero there and from the init elsewhere.
        var picture = Rgb(64, 64, (x, y) => (x + y) % 2 == 0 ? Red : Blue);
        var plan = Inpainting.Prepare((picture, 64, 64), (Gray(64, 64, (x, _) => x < 32), 64, 64),
            new InpaintSettings { BlurX = 0, BlurY = 0, FullRes = false, Fill = InpaintSettings.FillLatentNothing }, 64, 64, ImageDecoder.JustResize)!;
        Assert.Equal([1f, 1f, 1f, 1f, 0f, 0f, 0f, 0f], plan.LatentMask[..8]);

        float[] LastLatents(string prompt)
        {
            float[]? last = null;
            _pipeline.Generate(new GenerationRequest
            {
                Prompt = prompt, Steps = 4, Width = 64, Height = 64, Seed = 11, Sampler = "Euler", DenoisingStrength = 1, Inpaint = plan,
            }, p => last = [.. p.Latents!], CancellationToken.None);
            return last!;
        }

        var fox = LastLatents("a red fox");
        var whale = LastLatents("a blue whale in the deep sea, 8k");
        var plane = 8 * 8;
        for (var c = 0; c < 4; c++)
        {
            for (var p = 0; p < plane; p++)
            {
                var i = (c * plane) + p;
                if (p % 8 >= 4)
                {
                    Assert.Equal(fox[i], whale[i], 4); // kept: Euler's last step lands on the init's latents, whatever the prompt
                }
            }
        }

        Assert.Contains(Enumerable.Range(0, 4 * plane).Where(i => i % 8 < 4), i => Math.Abs(fox[i] - whale[i]) > 1e-3);
    }

    [Fact]
    public void WholePicture_KeepsTheUnmaskedPixels_AndSaysSoInTheInfotext()
    {
        var picture = Rgb(64, 64, (x, y) => x < 32 ? Red : Blue);
        var plan = Inpainting.Prepare((picture, 64, 64), (Gray(64, 64, (x, y) => x >= 40 && y >= 40), 64, 64),
            new InpaintSettings { BlurX = 0, BlurY = 0, FullRes = false }, 64, 64, ImageDecoder.JustResize)!;
        var result = Inpaint("a fox", plan);
        var image = PngDecoder.Decode(result.Images[0].Png);
        Assert.Equal((64, 64), (image.Width, image.Height));
        // Unmasked: the original's pixels exactly (the overlay); masked: what the model made.
        Assert.Equal(Red, Pixel(image.Rgb, 64, 5, 60));
        Assert.Equal(Blue, Pixel(image.Rgb, 64, 60, 5));
        Assert.NotEqual(Blue, Pixel(image.Rgb, 64, 55, 55));
        Assert.Contains("Denoising strength: 1, Mask blur: 0, Masked content: fill, Version: atelier", result.Images[0].Infotext, StringComparison.Ordinal);
    }

    [Fact]
    public void OnlyMasked_GeneratesTheBoxAtTheJobsSize_AndPastesItBackIntoTheOriginal()
    {
        // A 160×96 picture, a 16×16 masked square, padding 8: the 32×32 box is generated at 64×64 and put back.
        var picture = Rgb(160, 96, (x, _) => x < 80 ? Red : Blue);
        var plan = Inpainting.Prepare((picture, 160, 96), (Gray(160, 96, (x, y) => x is >= 100 and < 116 && y is >= 40 and < 56), 160, 96),
            new InpaintSettings { Padding = 8, BlurX = 0, BlurY = 0, Fill = InpaintSettings.FillOriginal }, 64, 64, ImageDecoder.JustResize)!;
        Assert.Equal((92, 32, 32, 32), plan.PasteTo);
        var result = Inpaint("a fox", plan, strength: 0.9);
        var image = PngDecoder.Decode(result.Images[0].Png);
        Assert.Equal((160, 96), (image.Width, image.Height));
        Assert.Equal(Red, Pixel(image.Rgb, 160, 10, 10));
        Assert.Equal(Blue, Pixel(image.Rgb, 160, 95, 45)); // inside the box, outside the mask: the original's
        Assert.Equal(Blue, Pixel(image.Rgb, 160, 150, 90));
        Assert.NotEqual(Blue, Pixel(image.Rgb, 160, 108, 48));
        Assert.Contains("Size: 64x64", result.Images[0].Infotext, StringComparison.Ordinal);
        Assert.Contains("Inpaint area: Only masked, Masked area padding: 8", result.Images[0].Infotext, StringComparison.Ordinal);
    }

    [Fact]
    public void OnlyMasked_WithABlankMask_IsNoPlan_AndBadFieldsAreRefused()
    {
        var picture = Rgb(64, 64, (_, _) => Red);
        Assert.Null(Inpainting.Prepare((picture, 64, 64), (new byte[64 * 64], 64, 64), new InpaintSettings(), 64, 64, 0));
        var inverted = Inpainting.Prepare((picture, 64, 64), (new byte[64 * 64], 64, 64), new InpaintSettings { Invert = true, FullRes = false }, 64, 64, 0)!;
        Assert.All(inverted.LatentMask, v => Assert.Equal(1f, v)); // nothing masked, inverted: everything is generated
        Assert.Throws<EngineRequestException>(() => Inpainting.Prepare((picture, 64, 64), (new byte[64 * 64], 64, 64), new InpaintSettings { Fill = 4 }, 64, 64, 0));
        Assert.Throws<EngineRequestException>(() => Inpainting.Prepare((picture, 64, 64), (new byte[64 * 64], 64, 64), new InpaintSettings { BlurX = 65 }, 64, 64, 0));
    }

    public void Dispose()
    {
        _pipeline.Dispose();
        Directory.Delete(_root, recursive: true);
    }
}
