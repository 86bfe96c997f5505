using Atelier.Engine.Images;
using Atelier.Engine.Lora;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Tests;

/// <summary>
/// LoRA by A1111's prompt syntax: kohya's safetensors keys merged into the tiny model's weights by module name, found by
/// the initializer's name (the UNet's <c>conv_in</c>) or by the exporter's MatMul node name with the weight stored
/// transposed (the text encoder's <c>q_proj</c>), cached per model and LoRA set.
/// </summary>
public sealed class LoraTests : IDisposable
{
    private const int Hidden = 8;
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-lora-").FullName;
    private readonly string _model;
    private readonly string _lora;

    public LoraTests()
    {
        _model = Path.Combine(_root, "tiny");
        TinyPipeline.Write(_model);
        _lora = Path.Combine(_root, "foxy.safetensors");
        // Rank 2. conv_in: down [2, 4, 1, 1], up [4, 2, 1, 1], alpha 1 (scale alpha/rank = 0.5). q_proj: down [2, 8], up [8, 2], no
        // alpha (scale 1). And a module the tiny model does not have.
        TinyPipeline.WriteLora(_lora, Hidden);
    }

    private static float[] Values((int ElementType, long[] Dims, byte[] Raw) value) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(value.Raw).ToArray();

    [Fact]
    public void Patch_MergesUpTimesDown_ScaledByAlphaOverRankAndTheMultiplier_IntoTheRightWeights()
    {
        var file = SafeTensors.Open(_lora);
        var unet = LoraPatch.Compute(Path.Combine(_model, "unet", "model.onnx"), "lora_unet_", [(file, 0.8)])!;
        // ΔW = up·down: W[0, 0] = 2·1, W[1, 1] = 4·1, the rest 0; × alpha/rank (0.5) × 0.8.
        var conv = Values(unet.Initializers["conv_in.weight"]);
        Assert.Equal(0.8f, conv[0], 5);
        Assert.Equal(1.6f, conv[5], 5);
        Assert.Equal(2f * 0.8f / 2 + (4f * 0.8f / 2), conv.Sum(), 4);
        Assert.Equal(1, unet.Merged);
        Assert.Equal(["lora_unet_mid_block_attentions_0_proj_in"], unet.Unmatched);

        var text = LoraPatch.Compute(Path.Combine(_model, "text_encoder", "model.onnx"), "lora_te_", [(file, 1.0)])!;
        // up[1, 0] = 1 (index 2), up[3, 1] = 3 (index 7); down[0, 3] = 1, down[1, 5] = 2: ΔW[1, 3] = 1, ΔW[3, 5] = 6. The
        // MatMul's weight is stored transposed ([in, out]): ΔW[o, i] lands at [i, o].
        var q = Values(text.Initializers["onnx::MatMul_900"]);
        Assert.Equal(1f, q[(3 * Hidden) + 1]);
        Assert.Equal(6f, q[(5 * Hidden) + 3]);
        Assert.Equal(7f, q.Sum());

        // A LoRA with nothing for a model, or a multiplier of 0, patches nothing.
        Assert.Null(LoraPatch.Compute(Path.Combine(_model, "unet", "model.onnx"), "lora_unet_", [(file, 0.0)]));
    }

    [Fact]
    public void Pipeline_WithTheLora_DrawsSomethingElse_WeightZeroDrawsTheSame_AndTheInfotextHasItsHash()
    {
        using var cache = new PipelineCache(1L << 30);
        var model = ModelEntry.Scan(_root).Single();
        var request = new GenerationRequest { Prompt = "a red fox <lora:foxy:0.9>", Steps = 3, Width = 64, Height = 64, Seed = 5, Sampler = "Euler" };
        byte[] Draw(IReadOnlyList<LoraUse>? loras)
        {
            using var lease = cache.Rent(model, loras);
            return PngDecoder.Decode(lease.Pipeline.Generate(request, null, CancellationToken.None).Images[0].Png).Rgb;
        }

        var plain = Draw(null);
        var (found, missing) = LoraUse.FromPrompt(request.Prompt, name => name == "foxy" ? _lora : null);
        Assert.Empty(missing);
        Assert.NotEqual(plain, Draw(found));
        Assert.Equal(plain, Draw([new LoraUse("foxy", _lora, 0, 0)]));
        Assert.Equal(3, cache.Loads); // the model, the model with foxy at 0.9, the model with foxy at 0
        Draw(found);
        Assert.Equal(3, cache.Loads); // the same set again: the cached pipeline

        using (var lease = cache.Rent(model, found))
        {
            var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(_lora)))[..12];
            Assert.Contains($"Lora hashes: \"foxy: {hash}\"", lease.Pipeline.Generate(request, null, CancellationToken.None).Images[0].Infotext, StringComparison.Ordinal);
            Assert.Equal(["lora_unet_mid_block_attentions_0_proj_in"], lease.Pipeline.UnmatchedLoraModules);
        }
    }

    [Fact]
    public void AnSdxlLorasTextEncoderModules_OnAnSd1Model_AreReportedUnmatched_NotDropped()
    {
        var xl = Path.Combine(_root, "xl-style.safetensors");
        SafeTensors.Write(xl,
        [
            ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", [2, Hidden], new float[2 * Hidden]),
            ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", [Hidden, 2], new float[2 * Hidden]),
            ("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", [2, Hidden], new float[2 * Hidden]),
            ("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", [Hidden, 2], new float[2 * Hidden]),
        ]);
        using var pipeline = DiffusionPipeline.Load(_model, "tiny", "4444444444", null, [new LoraUse("xl-style", xl, 1, 1)]);
        Assert.Equal(["lora_te1_text_model_encoder_layers_0_self_attn_q_proj", "lora_te2_text_model_encoder_layers_0_self_attn_q_proj"],
            pipeline.UnmatchedLoraModules.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Prompt_NamesLoras_WithA1111sMultipliers()
    {
        var (found, missing) = LoraUse.FromPrompt("<lora:a:0.5> x <lora:a:0.4:0.9> <lora:a:te=0.2:unet=0.7> <lora:b> <hypernet:c:1> <lora:gone:1>",
            name => name is "a" or "b" ? $"/{name}.safetensors" : null);
        Assert.Equal([("a", 0.5, 0.5), ("a", 0.4, 0.9), ("a", 0.2, 0.7), ("b", 1.0, 1.0)], found.Select(l => (l.Name, l.TextWeight, l.UnetWeight)));
        Assert.Equal(["gone"], missing);
    }

    [Fact]
    public void SafeTensors_RefusesAHeaderThatDoesNotFitTheFile()
    {
        var broken = Path.Combine(_root, "broken.safetensors");
        File.WriteAllBytes(broken, [.. BitConverter.GetBytes(1_000_000L), .. "{}"u8.ToArray()]);
        Assert.Throws<InvalidDataException>(() => SafeTensors.Open(broken));
        var lying = Path.Combine(_root, "lying.safetensors");
        var header = """{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,64]}}"""u8.ToArray();
        File.WriteAllBytes(lying, [.. BitConverter.GetBytes((long)header.Length), .. header, .. new byte[16]]);
        Assert.Throws<InvalidDataException>(() => SafeTensors.Open(lying));
    }

    [Fact]
    public void AModelFileWhoseLengthsLie_IsRefused_NotReadForever()
    {
        // A graph field (7) claiming more bytes than the file has; then a length varint past the end.
        var lying = Path.Combine(_root, "lying.onnx");
        File.WriteAllBytes(lying, [0x3A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01, 0x02]);
        Assert.Throws<InvalidDataException>(() => OnnxReader.Read(lying));
        File.WriteAllBytes(lying, [0x3A, 0x05, 0x0A, 0xFF, 0xFF, 0xFF, 0x7F]);
        Assert.Throws<InvalidDataException>(() => OnnxReader.Read(lying));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
