using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Tests;

/// <summary>
/// SDXL pipelines on the tiny SDXL model (Optimum's layout): the two encoders' penultimate states side by side, the
/// second encoder's OpenCLIP padding, the pooled embedding, an empty negative prompt as zeros, the UNet's extra inputs
/// and the VAE's own scaling factor.
/// </summary>
public sealed class XlTests : IDisposable
{
    private const int Width = TinyPipeline.XlHidden1 + TinyPipeline.XlHidden2;
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-xl-").FullName;
    private readonly string _model;

    public XlTests()
    {
        _model = Path.Combine(_root, "tiny-xl");
        TinyPipeline.WriteXl(_model);
    }

    private float[] Table(string encoder) =>
        OnnxReader.ReadFloats(OnnxReader.Read(Path.Combine(_model, encoder, "model.onnx")).Initializers["text_model.embeddings.token_embedding.weight"]);

    [Fact]
    public void Conditioning_IsBothEncodersPenultimateStates_WithOpenClipPadding_AndAnEmptyNegativeIsZeros()
    {
        using var pipeline = DiffusionPipeline.Load(_model, "tiny-xl", "8888888888");
        Assert.True(pipeline.IsXl);
        var (t1, t2) = (Table("text_encoder"), Table("text_encoder_2"));
        var tokenizer = Text.ClipTokenizer.Load(Path.Combine(_model, "tokenizer"));
        var ids = Text.PromptChunks.From(tokenizer, "a red fox").Ids;
        var end = Array.IndexOf(ids, tokenizer.EndId);

        var (states, pooled) = pipeline.EncodeXl("a red fox", "");
        Assert.Equal(2 * 77 * Width, states.Length);
        Assert.Equal(2 * TinyPipeline.XlPooled, pooled.Length);
        // The negative half: zeros, as A1111 makes an empty negative prompt for SDXL.
        Assert.All(states[..(77 * Width)], v => Assert.Equal(0f, v));
        Assert.All(pooled[..TinyPipeline.XlPooled], v => Assert.Equal(0f, v));
        Assert.Contains(pooled[TinyPipeline.XlPooled..], v => v != 0);
        var positive = states[(77 * Width)..];
        foreach (var t in new[] { 0, 1, end, end + 1, 76 })
        {
            var row = positive.AsSpan(t * Width, Width).ToArray();
            // Each encoder's penultimate layer (×1.5 and ×0.5 of its table's row, not its last layer's +0.25 and +1);
            // the second encoder reads id 0 after the end token, the first the end token again.
            var id2 = t > end ? 0 : ids[t];
            for (var k = 0; k < TinyPipeline.XlHidden1; k++)
            {
                Assert.Equal(1.5f * t1[(ids[t] * TinyPipeline.XlHidden1) + k], row[k], 5);
            }

            for (var k = 0; k < TinyPipeline.XlHidden2; k++)
            {
                Assert.Equal(0.5f * t2[(id2 * TinyPipeline.XlHidden2) + k], row[TinyPipeline.XlHidden1 + k], 5);
            }
        }

        // A negative prompt is encoded like the positive one.
        var (withNegative, _) = pipeline.EncodeXl("a red fox", "a red fox");
        Assert.Equal(withNegative[(77 * Width)..], withNegative[..(77 * Width)]);
    }

    [Fact]
    public void Txt2ImgAndImg2Img_Run_WithTheVaesOwnScalingFactor_AndWhatSdxlDoesNotTakeIsSaid()
    {
        using var pipeline = DiffusionPipeline.Load(_model, "tiny-xl", "8888888888");
        Assert.Equal(0.13025f, pipeline.LatentScale, 6);
        var request = new GenerationRequest { Prompt = "a (red:1.3) fox", NegativePrompt = "", Steps = 3, Width = 64, Height = 64, Seed = 4, Sampler = "Euler" };
        var result = pipeline.Generate(request, null, CancellationToken.None);
        var picture = PngDecoder.Decode(result.Images[0].Png);
        Assert.Equal((64, 64), (picture.Width, picture.Height));
        Assert.Contains("Model: tiny-xl", result.Images[0].Infotext, StringComparison.Ordinal);
        // A wider picture is another size in the UNet's time ids and another noise: a different picture.
        var wide = pipeline.Generate(request with { Width = 128 }, null, CancellationToken.None);
        Assert.Equal(128, PngDecoder.Decode(wide.Images[0].Png).Width);
        var img2img = pipeline.Generate(request with { InitImage = (picture.Rgb, 64, 64), DenoisingStrength = 0.5 }, null, CancellationToken.None);
        Assert.Single(img2img.Images);
        var skipped = pipeline.Generate(request with { ClipSkip = 2 }, null, CancellationToken.None);
        Assert.Contains(skipped.Warnings, w => w.StartsWith("CLIP_stop_at_last_layers 2 is not applied", StringComparison.Ordinal));
        Assert.Equal(PngDecoder.Decode(result.Images[0].Png).Rgb.Length, PngDecoder.Decode(skipped.Images[0].Png).Rgb.Length);
    }

    [Fact]
    public void Refiner_TakesOverAtTheSwitch_WithItsOwnConditioning_AndSaysSoInTheInfotext()
    {
        var folder = Path.Combine(_root, "tiny-refiner");
        TinyPipeline.WriteXlRefiner(folder);
        using var refiner = DiffusionPipeline.Load(folder, "tiny-refiner", "5555555555");
        Assert.True(refiner.IsXl && refiner.IsRefiner);
        // The refiner's conditioning: its one encoder's penultimate states (12 wide), the pooled embedding beside them.
        var (states, pooled) = refiner.EncodeXl("a red fox", "blurry");
        Assert.Equal(2 * 77 * TinyPipeline.XlHidden2, states.Length);
        Assert.Equal(2 * TinyPipeline.XlPooled, pooled.Length);

        using var pipeline = DiffusionPipeline.Load(_model, "tiny-xl", "8888888888");
        var request = new GenerationRequest { Prompt = "a red fox", NegativePrompt = "blurry", Steps = 6, Width = 64, Height = 64, Seed = 4, Sampler = "Euler" };
        byte[] Draw(GenerationRequest r, out string infotext)
        {
            var image = pipeline.Generate(r, null, CancellationToken.None).Images[0];
            infotext = image.Infotext;
            return PngDecoder.Decode(image.Png).Rgb;
        }

        var alone = Draw(request, out var plain);
        var refined = Draw(request with { Refiner = new RefinerUse(refiner, 0.5, "tiny-refiner [5555555555]") }, out var info);
        Assert.NotEqual(alone, refined);
        Assert.Contains("Refiner: tiny-refiner [5555555555], Refiner switch at: 0.5", info, StringComparison.Ordinal);
        Assert.DoesNotContain("Refiner", plain, StringComparison.Ordinal);
        // A switch the schedule never reaches leaves the base model's picture, and says no refiner.
        var never = Draw(request with { Refiner = new RefinerUse(refiner, 1.0, "tiny-refiner [5555555555]") }, out var neverInfo);
        // (To ONNX Runtime's last bit on the CPU, whose threads may sum in another order from run to run.)
        Assert.True(alone.Zip(never).Max(p => Math.Abs(p.First - p.Second)) <= 2);
        Assert.DoesNotContain("Refiner", neverInfo, StringComparison.Ordinal);
        // Switching earlier changes the picture again: the refiner runs more of the steps.
        Assert.NotEqual(refined, Draw(request with { Refiner = new RefinerUse(refiner, 0.1, "tiny-refiner [5555555555]") }, out _));
    }

    [Fact]
    public void AHalfSdxlFolder_IsRefusedWithTheReason()
    {
        var half = Path.Combine(_root, "half");
        TinyPipeline.Write(half);
        Directory.CreateDirectory(Path.Combine(half, "text_encoder_2"));
        File.Copy(Path.Combine(_model, "text_encoder_2", "model.onnx"), Path.Combine(half, "text_encoder_2", "model.onnx"));
        var refused = Assert.Throws<InvalidDataException>(() => DiffusionPipeline.Load(half, "half", "9999999999"));
        Assert.Contains("takes no text_embeds and time_ids", refused.Message, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
