using Atelier.Engine.Lora;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Tests;

/// <summary>
/// A1111's <c>CLIP_stop_at_last_layers</c>: the hidden state entering the last (n − 1) layers, found by the exporter's
/// node names, through the final layer norm (the tiny model's second layer changes nothing, so clip skip 2 is exactly the
/// final layer norm of the last hidden state: γ = 1.5 + ¼k, β = 0.1k, ε = 1e-5).
/// </summary>
public sealed class ClipSkipTests : IDisposable
{
    private const int Hidden = 8;
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-clipskip-").FullName;

    private static float[] FinalLayerNorm(float[] states)
    {
        var result = new float[states.Length];
        for (var t = 0; t < states.Length / Hidden; t++)
        {
            var row = states.AsSpan(t * Hidden, Hidden).ToArray();
            var mean = row.Average();
            var variance = row.Select(v => (v - mean) * (v - mean)).Average();
            for (var k = 0; k < Hidden; k++)
            {
                result[(t * Hidden) + k] = (float)(((row[k] - mean) / Math.Sqrt(variance + 1e-5) * (1.5 + (0.25 * k))) + (0.1 * k));
            }
        }

        return result;
    }

    private static void Close(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-4, $"[{i}] {expected[i]} ≠ {actual[i]}");
        }
    }

    [Fact]
    public void ClipSkipTwo_IsTheFinalLayerNormOfTheStateBeforeTheLastLayer_AndTheInfotextSaysSo()
    {
        TinyPipeline.Write(Path.Combine(_root, "tiny"));
        using var pipeline = DiffusionPipeline.Load(Path.Combine(_root, "tiny"), "tiny", "5555555555");
        Assert.Null(pipeline.ClipSkipUnsupported);
        var last = pipeline.EncodePrompt("a red fox");
        Close(FinalLayerNorm(last), pipeline.EncodePrompt("a red fox", 2));
        // Two layers: skip 3 is the embeddings (the same here: the first layer's q_proj is zero); past them is refused.
        Close(FinalLayerNorm(last), pipeline.EncodePrompt("a red fox", 3));
        Assert.Throws<EngineRequestException>(() => pipeline.EncodePrompt("a red fox", 4));

        var request = new GenerationRequest { Prompt = "a red fox", Steps = 2, Width = 64, Height = 64, Seed = 3, Sampler = "Euler" };
        var one = pipeline.Generate(request, null, CancellationToken.None).Images[0];
        var two = pipeline.Generate(request with { ClipSkip = 2 }, null, CancellationToken.None).Images[0];
        Assert.NotEqual(one.Png, two.Png);
        Assert.Contains("Model: tiny, Clip skip: 2, Version: atelier", two.Infotext, StringComparison.Ordinal);
        Assert.DoesNotContain("Clip skip", one.Infotext, StringComparison.Ordinal);
    }

    [Fact]
    public void ClipSkip_SeesTheLorasMergedIntoTheTextEncoder()
    {
        TinyPipeline.Write(Path.Combine(_root, "tiny"));
        var lora = Path.Combine(_root, "foxy.safetensors");
        TinyPipeline.WriteLora(lora, Hidden);
        using var pipeline = DiffusionPipeline.Load(Path.Combine(_root, "tiny"), "tiny", "5555555555", loras: [new LoraUse("foxy", lora, 1, 1)]);
        // The LoRA moves q_proj, so the hidden state before the (identity) last layer is the LoRA's: skip 2 follows it,
        // while skip 3, the embeddings before the first layer, does not.
        var last = pipeline.EncodePrompt("a red fox");
        Close(FinalLayerNorm(last), pipeline.EncodePrompt("a red fox", 2));
        Assert.NotEqual(pipeline.EncodePrompt("a red fox", 2), pipeline.EncodePrompt("a red fox", 3));
    }

    [Fact]
    public void AModelThatDoesNotNameItsLayers_KeepsTheLastLayer_AndSaysWhy()
    {
        var demo = DemoModel.Ensure(_root);
        using var pipeline = DiffusionPipeline.Load(demo, "atelier-demo", "4444444444");
        Assert.StartsWith("its text encoder does not name its layers", pipeline.ClipSkipUnsupported, StringComparison.Ordinal);
        var request = new GenerationRequest { Prompt = "a red ball", Steps = 2, Width = 64, Height = 64, Seed = 3, Sampler = "Euler" };
        var one = pipeline.Generate(request, null, CancellationToken.None).Images[0];
        var two = pipeline.Generate(request with { ClipSkip = 2 }, null, CancellationToken.None).Images[0];
        Assert.Equal(one.Png, two.Png);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
