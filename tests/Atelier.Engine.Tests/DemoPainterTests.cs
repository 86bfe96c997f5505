using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Tests;

/// <summary>The demo model as a newcomer meets it: written by <see cref="DemoModel.Ensure"/>, run through the real pipeline.</summary>
public sealed class DemoModelFixture : IDisposable
{
    public DemoModelFixture()
    {
        Root = Directory.CreateTempSubdirectory("atelier-demo-").FullName;
        Pipeline = DiffusionPipeline.Load(DemoModel.Ensure(Root), DemoModel.FolderName, "0123456789");
    }

    public string Root { get; }
    public DiffusionPipeline Pipeline { get; }

    public void Dispose()
    {
        Pipeline.Dispose();
        Directory.Delete(Root, recursive: true);
    }
}

/// <summary>
/// The demo paints what the prompt names (colours, shapes, scenes), smoothly, the same for the same seed, with every
/// sampler: checked on the pixels of the PNGs it answers.
/// </summary>
public class DemoPainterTests(DemoModelFixture demo) : IClassFixture<DemoModelFixture>
{
    private const int Size = 128;

    private (byte[] Rgb, int W) Paint(string prompt, string negative = "", long seed = 1, string sampler = "Euler", double cfg = 7)
    {
        var png = demo.Pipeline.Generate(new GenerationRequest
        {
            Prompt = prompt, NegativePrompt = negative, Steps = 12, Width = Size, Height = Size, Seed = seed, Sampler = sampler, CfgScale = cfg,
        }, null, CancellationToken.None).Images[0].Png;
        var (rgb, w, h) = PngDecoder.Decode(png);
        Assert.Equal((Size, Size), (w, h));
        return (rgb, w);
    }

    private static (int R, int G, int B) At((byte[] Rgb, int W) image, double fx, double fy)
    {
        var i = (((int)(fy * Size) * image.W) + (int)(fx * Size)) * 3;
        return (image.Rgb[i], image.Rgb[i + 1], image.Rgb[i + 2]);
    }

    [Theory]
    [InlineData("a red ball", 0)]
    [InlineData("a green ball", 1)]
    [InlineData("a blue ball", 2)]
    public void TheColourNamed_IsTheSubjectsColour(string prompt, int channel)
    {
        var centre = At(Paint(prompt), 0.5, 0.52);
        int[] c = [centre.R, centre.G, centre.B];
        Assert.True(c.Where((_, i) => i != channel).All(other => c[channel] > other + 60), $"{prompt}: centre is {centre}");
    }

    [Fact]
    public void TheFirstColourNamed_IsTheSubjects_AndASceneWordPaintsTheSky()
    {
        var image = Paint("a red ball in the night");
        var centre = At(image, 0.5, 0.52);
        var sky = At(image, 0.5, 0.03);
        Assert.True(centre.R > centre.G + 60 && centre.R > centre.B + 60, $"centre {centre}");
        Assert.True(sky.R + sky.G + sky.B < 200, $"a night sky is dark: {sky}");
        var blue = At(Paint("a red ball on a blue rug"), 0.5, 0.52);
        Assert.True(blue.R > blue.B + 40, $"red first: {blue}");
    }

    [Fact]
    public void AShapeWord_ChoosesTheShape()
    {
        // The corners of the subject's square are inside a square and outside a disc of the same size.
        var square = Paint("a red box in the night");
        var disc = Paint("a red ball in the night");
        (int R, int G, int B) corner(byte[] rgb) => At((rgb, Size), 0.5 + 0.22, 0.52 + 0.22);
        var inSquare = corner(square.Rgb);
        var inDisc = corner(disc.Rgb);
        var centre = At(square, 0.5, 0.52);
        Assert.True(Distance(inSquare, centre) < 90, $"square corner {inSquare} vs centre {centre}");
        Assert.True(Distance(inDisc, centre) > Distance(inSquare, centre) + 40, $"disc corner {inDisc}, square corner {inSquare}");
    }

    [Fact]
    public void Pictures_AreSmooth_AndTheSameSeedGivesTheSamePicture_WithEverySampler()
    {
        foreach (var sampler in new[] { "Euler", "Euler a", "DPM++ 2M", "LMS", "DDIM" })
        {
            var a = Paint("a purple planet in space", sampler: sampler);
            Assert.Equal(a.Rgb, Paint("a purple planet in space", sampler: sampler).Rgb);
            // Neighbouring pixels differ little on average (the old demo drew stripes: a large step between neighbours).
            double step = 0;
            for (var y = 0; y < Size; y++)
            {
                for (var x = 1; x < Size; x++)
                {
                    var i = ((y * Size) + x) * 3;
                    step += Math.Abs(a.Rgb[i] - a.Rgb[i - 3]) + Math.Abs(a.Rgb[i + 1] - a.Rgb[i - 2]) + Math.Abs(a.Rgb[i + 2] - a.Rgb[i - 1]);
                }
            }

            Assert.True(step / (Size * (Size - 1) * 3) < 4, $"{sampler}: mean step {step / (Size * (Size - 1) * 3):0.00}");
            var centre = At(a, 0.5, 0.52);
            Assert.True(centre.R > centre.G + 40 && centre.B > centre.G + 40, $"{sampler}: a purple centre, got {centre}");
        }
    }

    [Fact]
    public void ANegativePrompt_PushesItsColourAway()
    {
        var plain = At(Paint("a ball"), 0.5, 0.52);
        var notRed = At(Paint("a ball", negative: "red"), 0.5, 0.52);
        Assert.True(notRed.R < plain.R - 20 || notRed.R < Math.Min(notRed.G, notRed.B), $"plain {plain}, negative red {notRed}");
    }

    private static double Distance((int R, int G, int B) a, (int R, int G, int B) b) =>
        Math.Sqrt(Math.Pow(a.R - b.R, 2) + Math.Pow(a.G - b.G, 2) + Math.Pow(a.B - b.B, 2));
}
