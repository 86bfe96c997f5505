using System.Text.Json;
using Atelier.Engine.Text;

namespace Atelier.Engine.Onnx;

/// <summary>What the tiny UNet computes: out = A·sample + B·mean(encoder_hidden_states), plus, when heavy, a conv stack.</summary>
/// <remarks>
/// <see cref="Fp16"/>: float16 tensors at every model's inputs and outputs, as an fp16 export has (cast to fp32 inside, so
/// the CPU runs it). <see cref="WeightsMiB"/>: a UNet initializer of that many MiB that each step reads one value of
/// (at the timestep, times zero), so the model's load costs what loading that much weight costs while a step stays cheap:
/// a model whose load is as dear as a real one's, for measuring hot-model scheduling on a CPU.
/// </remarks>
public sealed record TinyPipelineOptions(float A = 1f, float B = 0.05f, bool Heavy = false, bool Int64Timestep = false, int HiddenSize = 8, bool Fp16 = false,
    int WeightsMiB = 0);

/// <summary>
/// Builds a tiny Stable-Diffusion-shaped pipeline in the diffusers ONNX folder layout: real ONNX graphs with the real
/// input and output names, a synthetic CLIP vocabulary, configs. It is how tests run the engine, and how a newcomer
/// gets a working demo model without downloading anything.
/// </summary>
public static class TinyPipeline
{
    public static void Write(string folder, TinyPipelineOptions? options = null)
    {
        var o = options ?? new TinyPipelineOptions();
        Directory.CreateDirectory(folder);
        var h = o.HiddenSize;
        var rng = new Random(20261127);

        // text_encoder: Gather(token table [vocabulary, H], input_ids) → last_hidden_state; mean over the sequence →
        // pooler_output. The table's rows repeat every 256 tokens (row i is the i mod 256th of 256 random vectors), and it
        // has CLIP's name, so an embedding's vectors can be added as rows past the vocabulary.
        var emb = Enumerable.Range(0, 256 * h).Select(_ => (float)((rng.NextDouble() * 2) - 1)).ToArray();
        var vocabulary = Vocabulary().Count;
        var table = new float[vocabulary * h];
        for (var row = 0; row < vocabulary; row++)
        {
            Array.Copy(emb, (row % 256) * h, table, row * h, h);
        }

        var io = o.Fp16 ? OnnxGraph.ElementFloat16 : OnnxGraph.ElementFloat;
        var text = new OnnxGraph()
            .Input("input_ids", OnnxGraph.ElementInt32, "batch", "sequence")
            .Constant("text_model.embeddings.token_embedding.weight", table, vocabulary, h)
            .Node("Cast", ["input_ids"], ["idx"], ("to", (long)OnnxGraph.ElementInt64))
            .NamedNode("/text_model/embeddings/token_embedding/Gather", "Gather", ["text_model.embeddings.token_embedding.weight", "idx"], ["embedded"], ("axis", 0L))
            // A zero "q_proj" as PyTorch exports a Linear: a MatMul named by its module path over a transposed weight
            // under a generated name. It changes nothing, and gives a LoRA a text-encoder layer to apply to.
            .Constant("onnx::MatMul_900", new float[h * h], h, h)
            .NamedNode("/text_model/encoder/layers.0/self_attn/q_proj/MatMul", "MatMul", ["embedded", "onnx::MatMul_900"], ["q"])
            .NamedNode("/text_model/encoder/layers.0/Add", "Add", ["embedded", "q"], ["layer0"])
            // A second "layer" that changes nothing, and the final layer norm's weights (used for nothing but a zero):
            // the names a clip skip looks for (the input of layers.1's layer_norm1 is the hidden state before the last layer).
            .NamedNode("/text_model/encoder/layers.1/layer_norm1/Identity", "Identity", ["layer0"], ["layer1"])
            .Constant("text_model.final_layer_norm.weight", [.. Enumerable.Range(0, h).Select(k => 1.5f + (0.25f * k))], h)
            .Constant("text_model.final_layer_norm.bias", [.. Enumerable.Range(0, h).Select(k => 0.1f * k)], h)
            .Constant("nothing", [0f])
            .Node("ReduceSum", ["text_model.final_layer_norm.weight"], ["gamma_sum"], ("keepdims", 0L))
            .Node("ReduceSum", ["text_model.final_layer_norm.bias"], ["beta_sum"], ("keepdims", 0L))
            .Node("Add", ["gamma_sum", "beta_sum"], ["norm_sum"])
            .Node("Mul", ["norm_sum", "nothing"], ["zero_shift"])
            .Node("Add", ["layer1", "zero_shift"], ["hidden32"])
            .Node("ReduceMean", ["hidden32"], ["pooled32"], ("axes", new long[] { 1 }), ("keepdims", 0L));
        Save(folder, "text_encoder", FromFloat(text, o.Fp16, ("hidden32", "last_hidden_state"), ("pooled32", "pooler_output"))
            .Output("last_hidden_state", io, "batch", "sequence", h)
            .Output("pooler_output", io, "batch", h)
            .ToModel("text_encoder"));

        // unet: out_sample = A·sample + B·mean(encoder_hidden_states) (+ a conv stack when heavy).
        var unet = ToFloat(new OnnxGraph()
            .Input("sample", io, "batch", 4, "height", "width")
            .Input("timestep", o.Int64Timestep ? OnnxGraph.ElementInt64 : OnnxGraph.ElementFloat, "steps")
            .Input("encoder_hidden_states", io, "batch", "sequence", h), o.Fp16, ("sample", "sample32"), ("encoder_hidden_states", "states32"))
            .Constant("a", [o.A])
            .Constant("b", [o.B])
            .ConstantInt64("shape", [-1, 1, 1, 1], 4)
            .Node("Mul", ["sample32", "a"], ["scaled0"])
            // A zero 1×1 "conv_in" named as PyTorch exports it: nothing changes, and a LoRA has a UNet layer to apply to.
            .Constant("conv_in.weight", new float[16], 4, 4, 1, 1)
            .NamedNode("/conv_in/Conv", "Conv", ["sample32", "conv_in.weight"], ["conv_in"])
            .Node("Add", ["scaled0", "conv_in"], ["scaled"])
            .Node("ReduceMean", ["states32"], ["m"], ("axes", new long[] { 1, 2 }), ("keepdims", 0L))
            .Node("Reshape", ["m", "shape"], ["m4"])
            .Node("Mul", ["m4", "b"], ["bias"]);
        if (o.Heavy)
        {
            // Three 3×3 convolutions 4→96→96→4, scaled down: a few tens of milliseconds per step at 64×64 latents on one core.
            float[] Weights(int count, double scale) => [.. Enumerable.Range(0, count).Select(_ => (float)(((rng.NextDouble() * 2) - 1) * scale))];
            unet.Constant("w1", Weights(96 * 4 * 9, 0.1), 96, 4, 3, 3)
                .Constant("w2", Weights(96 * 96 * 9, 0.02), 96, 96, 3, 3)
                .Constant("w3", Weights(4 * 96 * 9, 0.02), 4, 96, 3, 3)
                .Constant("tiny", [0.001f])
                .Node("Conv", ["sample32", "w1"], ["c1"], ("pads", new long[] { 1, 1, 1, 1 }))
                .Node("Relu", ["c1"], ["r1"])
                .Node("Conv", ["r1", "w2"], ["c2"], ("pads", new long[] { 1, 1, 1, 1 }))
                .Node("Relu", ["c2"], ["r2"])
                .Node("Conv", ["r2", "w3"], ["c3"], ("pads", new long[] { 1, 1, 1, 1 }))
                .Node("Mul", ["c3", "tiny"], ["c3s"])
                .Node("Add", ["scaled", "c3s"], ["mixed"])
                .Node("Add", ["mixed", "bias"], ["out32"]);
        }
        else
        {
            unet.Node("Add", ["scaled", "bias"], ["out32"]);
        }

        if (o.WeightsMiB is < 0 or > 1024)
        {
            // An ONNX file is one protobuf message, which may not reach 2 GiB.
            throw new ArgumentOutOfRangeException(nameof(options), o.WeightsMiB, "WeightsMiB must be 0 to 1024");
        }

        if (o.WeightsMiB > 0)
        {
            // The weight that makes the load dear: one value of it per step (Gather at the timestep), times zero.
            var count = o.WeightsMiB * (1 << 18);
            var weights = new float[count];
            var state = (uint)BitConverter.SingleToInt32Bits(o.A) | 1u;
            for (var i = 0; i < count; i++)
            {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                weights[i] = (state >> 8) * (1f / (1 << 24));
            }

            unet.Constant("load_weights", weights, count)
                .Constant("no_weight", [0f])
                .Node("Cast", ["timestep"], ["weight_index"], ("to", (long)OnnxGraph.ElementInt64))
                .Node("Gather", ["load_weights", "weight_index"], ["picked"], ("axis", 0L))
                .Node("ReduceMax", ["picked"], ["picked_max"], ("keepdims", 0L))
                .Node("Mul", ["picked_max", "no_weight"], ["no_shift"])
                .Node("Add", ["out32", "no_shift"], ["out32_weighed"]);
        }

        Save(folder, "unet", FromFloat(unet, o.Fp16, (o.WeightsMiB > 0 ? "out32_weighed" : "out32", "out_sample")).Output("out_sample", io, "batch", 4, "height", "width").ToModel("unet"));

        // vae: a stride-8 (transposed) convolution between 3×H×W pixels and 4×H/8×W/8 latents.
        var vaeWeights = Enumerable.Range(0, 4 * 3 * 8 * 8).Select(i => (float)(Math.Sin(i * 0.37) * 0.5)).ToArray();
        var decoder = ToFloat(new OnnxGraph().Input("latent_sample", io, "batch", 4, "height", "width"), o.Fp16, ("latent_sample", "latent32"))
            .Constant("w", vaeWeights, 4, 3, 8, 8)
            .Node("ConvTranspose", ["latent32", "w"], ["pixels32"], ("strides", new long[] { 8, 8 }));
        Save(folder, "vae_decoder", FromFloat(decoder, o.Fp16, ("pixels32", "sample"))
            .Output("sample", io, "batch", 3, "pixel_height", "pixel_width")
            .ToModel("vae_decoder"));
        var encoder = ToFloat(new OnnxGraph().Input("sample", io, "batch", 3, "pixel_height", "pixel_width"), o.Fp16, ("sample", "pixels32"))
            .Constant("w", vaeWeights.Select(v => v / 64f).ToArray(), 4, 3, 8, 8)
            .Node("Conv", ["pixels32", "w"], ["latent32"], ("strides", new long[] { 8, 8 }));
        Save(folder, "vae_encoder", FromFloat(encoder, o.Fp16, ("latent32", "latent_sample"))
            .Output("latent_sample", io, "batch", 4, "height", "width")
            .ToModel("vae_encoder"));

        WriteTokenizer(Path.Combine(folder, "tokenizer"));
        WriteConfigs(folder);
    }

    /// <summary>The tiny SDXL pipeline's widths: the first encoder's, the second's, and the pooled projection's.</summary>
    public const int XlHidden1 = 8, XlHidden2 = 12, XlPooled = 6;

    /// <summary>
    /// A tiny SDXL pipeline in the layout Optimum exports (<c>text_encoder</c>, <c>text_encoder_2</c> with
    /// <c>text_embeds</c>, each with <c>hidden_states.0…2</c> outputs; a UNet taking <c>text_embeds</c> and <c>time_ids</c>;
    /// a VAE whose config gives SDXL's scaling factor 0.13025). The first encoder's layers are ×1.5 then +0.25 of its token
    /// rows, the second's ×0.5 then +1, so the penultimate states are 1.5 and 0.5 times the tables' rows. The UNet
    /// computes A·sample + B·mean(encoder_hidden_states) + C·mean(text_embeds) + D·mean(time_ids).
    /// </summary>
    public static void WriteXl(string folder)
    {
        Write(folder);
        var rng = new Random(20261129);
        var vocabulary = Vocabulary().Count;
        float[] Table(int width) => [.. Enumerable.Range(0, vocabulary * width).Select(_ => (float)((rng.NextDouble() * 2) - 1))];

        OnnxGraph Encoder(int width, float scale, float shift) => new OnnxGraph()
            .Input("input_ids", OnnxGraph.ElementInt32, "batch", "sequence")
            .Constant("text_model.embeddings.token_embedding.weight", Table(width), vocabulary, width)
            .Constant("scale", [scale])
            .Constant("shift", [shift])
            .Node("Cast", ["input_ids"], ["idx"], ("to", (long)OnnxGraph.ElementInt64))
            .Node("Gather", ["text_model.embeddings.token_embedding.weight", "idx"], ["hidden_states.0"], ("axis", 0L))
            .Node("Mul", ["hidden_states.0", "scale"], ["hidden_states.1"])
            .Node("Add", ["hidden_states.1", "shift"], ["hidden_states.2"])
            .Node("Identity", ["hidden_states.2"], ["last_hidden_state"]);

        var first = Encoder(XlHidden1, 1.5f, 0.25f)
            .Node("ReduceMean", ["last_hidden_state"], ["pooler_output"], ("axes", new long[] { 1 }), ("keepdims", 0L))
            .Output("last_hidden_state", OnnxGraph.ElementFloat, "batch", "sequence", XlHidden1)
            .Output("pooler_output", OnnxGraph.ElementFloat, "batch", XlHidden1);
        var second = Encoder(XlHidden2, 0.5f, 1f)
            .Constant("text_projection.weight", [.. Enumerable.Range(0, XlHidden2 * XlPooled).Select(_ => (float)((rng.NextDouble() * 2) - 1))], XlHidden2, XlPooled)
            .Node("ReduceMean", ["last_hidden_state"], ["pooled"], ("axes", new long[] { 1 }), ("keepdims", 0L))
            .Node("MatMul", ["pooled", "text_projection.weight"], ["text_embeds"])
            .Output("text_embeds", OnnxGraph.ElementFloat, "batch", XlPooled)
            .Output("last_hidden_state", OnnxGraph.ElementFloat, "batch", "sequence", XlHidden2);
        foreach (var (graph, width) in new[] { (first, XlHidden1), (second, XlHidden2) })
        {
            for (var layer = 0; layer <= 2; layer++)
            {
                graph.Output($"hidden_states.{layer}", OnnxGraph.ElementFloat, "batch", "sequence", width);
            }
        }

        Save(folder, "text_encoder", first.ToModel("text_encoder"));
        Save(folder, "text_encoder_2", second.ToModel("text_encoder_2"));

        Save(folder, "unet", XlUnet(XlHidden1 + XlHidden2, 6, 1f, 0.001f));

        File.WriteAllText(Path.Combine(folder, "vae_decoder", "config.json"), JsonSerializer.Serialize(new Dictionary<string, object> { ["scaling_factor"] = 0.13025 }));
        WriteTokenizer(Path.Combine(folder, "tokenizer_2"));
        var index = JsonSerializer.Deserialize<Dictionary<string, object>>(File.ReadAllText(Path.Combine(folder, "model_index.json")))!;
        index["_class_name"] = "ORTStableDiffusionXLPipeline";
        index["text_encoder_2"] = new[] { "transformers", "CLIPTextModelWithProjection" };
        index["tokenizer_2"] = new[] { "transformers", "CLIPTokenizer" };
        File.WriteAllText(Path.Combine(folder, "model_index.json"), JsonSerializer.Serialize(index));
    }

    /// <summary>
    /// A tiny SDXL refiner: <see cref="WriteXl"/>'s second encoder and tokenizer alone, and a UNet that takes the second
    /// encoder's states, <c>text_embeds</c> and five time ids (the size, the crop and an aesthetic score), computing
    /// 0.5·sample + 0.05·mean(states) + 0.05·mean(text_embeds) + 0.01·mean(time_ids).
    /// </summary>
    public static void WriteXlRefiner(string folder)
    {
        WriteXl(folder);
        Directory.Delete(Path.Combine(folder, "text_encoder"), recursive: true);
        Directory.Delete(Path.Combine(folder, "tokenizer"), recursive: true);
        Save(folder, "unet", XlUnet(XlHidden2, 5, 0.5f, 0.01f));
    }

    /// <summary>A tiny SDXL-interface UNet: a·sample + 0.05·mean(states) + 0.05·mean(text_embeds) + d·mean(time_ids).</summary>
    private static byte[] XlUnet(int statesWidth, int timeIds, float a, float d) => new OnnxGraph()
        .Input("sample", OnnxGraph.ElementFloat, "batch", 4, "height", "width")
        .Input("timestep", OnnxGraph.ElementFloat, "steps")
        .Input("encoder_hidden_states", OnnxGraph.ElementFloat, "batch", "sequence", statesWidth)
        .Input("text_embeds", OnnxGraph.ElementFloat, "batch", XlPooled)
        .Input("time_ids", OnnxGraph.ElementFloat, "batch", timeIds)
        .Constant("a", [a])
        .Constant("b", [0.05f])
        .Constant("c", [0.05f])
        .Constant("d", [d])
        .ConstantInt64("shape", [-1, 1, 1, 1], 4)
        .Node("Mul", ["sample", "a"], ["scaled"])
        .Node("ReduceMean", ["encoder_hidden_states"], ["m"], ("axes", new long[] { 1, 2 }), ("keepdims", 0L))
        .Node("ReduceMean", ["text_embeds"], ["p"], ("axes", new long[] { 1 }), ("keepdims", 0L))
        .Node("ReduceMean", ["time_ids"], ["t"], ("axes", new long[] { 1 }), ("keepdims", 0L))
        .Node("Mul", ["m", "b"], ["mb"])
        .Node("Mul", ["p", "c"], ["pc"])
        .Node("Mul", ["t", "d"], ["td"])
        .Node("Add", ["mb", "pc"], ["mp"])
        .Node("Add", ["mp", "td"], ["bias1"])
        .Node("Reshape", ["bias1", "shape"], ["bias"])
        .Node("Add", ["scaled", "bias"], ["out_sample"])
        .Output("out_sample", OnnxGraph.ElementFloat, "batch", 4, "height", "width")
        .ToModel("unet");

    /// <summary>
    /// A decoder-only VAE folder (<c>vae_decoder/model.onnx</c>) of the tiny model's interface that makes every latent a
    /// flat 8×8 block (0.02 × the sum of its four channels): a VAE that visibly differs from the model's own.
    /// </summary>
    public static void WriteFlatVae(string folder) => Save(folder, "vae_decoder", new OnnxGraph()
        .Input("latent_sample", OnnxGraph.ElementFloat, "batch", 4, "height", "width")
        .Constant("w", [.. Enumerable.Repeat(0.02f, 4 * 3 * 8 * 8)], 4, 3, 8, 8)
        .Node("ConvTranspose", ["latent_sample", "w"], ["sample"], ("strides", new long[] { 8, 8 }))
        .Output("sample", OnnxGraph.ElementFloat, "batch", 3, "pixel_height", "pixel_width")
        .ToModel("vae_decoder"));

    /// <summary>
    /// A tiny upscaler model in ESRGAN's interface ([1, 3, H, W] in 0..1 → [1, 3, sH, sW]): each pixel becomes an s×s block
    /// at <paramref name="gain"/> of its value (a grouped transposed convolution), so tests can work out every pixel.
    /// </summary>
    public static void WriteUpscaler(string path, int scale = 2, float gain = 0.5f)
    {
        var model = new OnnxGraph()
            .Input("input", OnnxGraph.ElementFloat, 1, 3, "height", "width")
            .Constant("w", [.. Enumerable.Repeat(gain, 3 * scale * scale)], 3, 1, scale, scale)
            .Node("ConvTranspose", ["input", "w"], ["output"], ("strides", new long[] { scale, scale }), ("group", (long)3))
            .Output("output", OnnxGraph.ElementFloat, 1, 3, "out_height", "out_width")
            .ToModel("upscaler");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllBytes(path, model);
    }

    /// <summary>
    /// A kohya-format LoRA for the tiny model (rank 2): it tints the UNet's <c>conv_in</c> (its first two channels gain
    /// 2× and 4× the sample, times alpha/rank = 0.5) and moves the text encoder's <c>q_proj</c>; plus one module the tiny
    /// model lacks, which an engine reports as not applied. Its values are small integers, so tests can work them out.
    /// </summary>
    public static void WriteLora(string path, int hiddenSize = 8)
    {
        var h = hiddenSize;
        Lora.SafeTensors.Write(path,
        [
            ("lora_unet_conv_in.lora_down.weight", [2, 4, 1, 1], [1, 0, 0, 0, 0, 1, 0, 0]),
            ("lora_unet_conv_in.lora_up.weight", [4, 2, 1, 1], [2, 0, 0, 4, 0, 0, 0, 0]),
            ("lora_unet_conv_in.alpha", [], [1]),
            ("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", [2, h], [.. Enumerable.Range(0, 2 * h).Select(i => i == 3 ? 1f : i == h + 5 ? 2f : 0f)]),
            ("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", [h, 2], [.. Enumerable.Range(0, 2 * h).Select(i => i == 2 ? 1f : i == 7 ? 3f : 0f)]),
            ("lora_unet_mid_block_attentions_0_proj_in.lora_down.weight", [2, 4], new float[8]),
            ("lora_unet_mid_block_attentions_0_proj_in.lora_up.weight", [4, 2], new float[8]),
        ], new Dictionary<string, string> { ["ss_network_dim"] = "2", ["ss_network_alpha"] = "1", ["atelier_synthetic"] = "a tiny LoRA for the tiny test model" });
    }

    /// <summary>
    /// The scheduler config (SD 1.x's PNDM training schedule) and <c>model_index.json</c> of a diffusers ONNX folder;
    /// <paramref name="synthetic"/> marks a model with no learned weights (the demo).
    /// </summary>
    internal static void WriteConfigs(string folder, string? synthetic = null)
    {
        Directory.CreateDirectory(Path.Combine(folder, "scheduler"));
        File.WriteAllText(Path.Combine(folder, "scheduler", "scheduler_config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["_class_name"] = "PNDMScheduler", ["beta_start"] = 0.00085, ["beta_end"] = 0.012, ["beta_schedule"] = "scaled_linear",
            ["num_train_timesteps"] = 1000, ["steps_offset"] = 1, ["set_alpha_to_one"] = false,
        }));
        var index = new Dictionary<string, object> { ["_class_name"] = "OnnxStableDiffusionPipeline", ["_diffusers_version"] = "0.30.0" };
        if (synthetic is not null)
        {
            index["_atelier_synthetic"] = synthetic;
        }

        index["text_encoder"] = new[] { "diffusers", "OnnxRuntimeModel" };
        index["unet"] = new[] { "diffusers", "OnnxRuntimeModel" };
        index["vae_decoder"] = new[] { "diffusers", "OnnxRuntimeModel" };
        index["vae_encoder"] = new[] { "diffusers", "OnnxRuntimeModel" };
        index["tokenizer"] = new[] { "transformers", "CLIPTokenizer" };
        index["scheduler"] = new[] { "diffusers", "PNDMScheduler" };
        File.WriteAllText(Path.Combine(folder, "model_index.json"), JsonSerializer.Serialize(index));
    }

    /// <summary>A synthetic CLIP vocabulary: the byte alphabet, each with and without <c>&lt;/w&gt;</c>, a few merges, the special tokens.</summary>
    public static void WriteTokenizer(string folder)
    {
        Directory.CreateDirectory(folder);
        var vocab = Vocabulary();
        File.WriteAllText(Path.Combine(folder, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllLines(Path.Combine(folder, "merges.txt"), ["#version: 0.2", .. Merges]);
    }

    private static readonly string[] Merges = ["r e", "e d</w>", "f o", "x</w>", "fo x</w>", "a </w>", "re d</w>", "c a", "ca t</w>"];

    /// <summary>The synthetic vocabulary: token → id.</summary>
    private static Dictionary<string, int> Vocabulary()
    {
        var vocab = new Dictionary<string, int>();
        foreach (var c in ClipTokenizer.ByteAlphabet)
        {
            vocab[c] = vocab.Count;
        }

        foreach (var c in ClipTokenizer.ByteAlphabet)
        {
            vocab[c + "</w>"] = vocab.Count;
        }

        foreach (var m in Merges)
        {
            var merged = m.Replace(" ", "", StringComparison.Ordinal);
            vocab.TryAdd(merged, vocab.Count);
        }

        vocab["<|startoftext|>"] = vocab.Count;
        vocab["<|endoftext|>"] = vocab.Count;
        return vocab;
    }

    /// <summary>Graph inputs to the fp32 names the nodes use: a Cast from float16, or an Identity when the model is fp32.</summary>
    private static OnnxGraph ToFloat(OnnxGraph graph, bool fp16, params (string From, string To)[] names)
    {
        foreach (var (from, to) in names)
        {
            graph = fp16 ? graph.Node("Cast", [from], [to], ("to", (long)OnnxGraph.ElementFloat)) : graph.Node("Identity", [from], [to]);
        }

        return graph;
    }

    /// <summary>The nodes' fp32 results to the graph outputs: a Cast to float16, or an Identity when the model is fp32.</summary>
    private static OnnxGraph FromFloat(OnnxGraph graph, bool fp16, params (string From, string To)[] names)
    {
        foreach (var (from, to) in names)
        {
            graph = fp16 ? graph.Node("Cast", [from], [to], ("to", (long)OnnxGraph.ElementFloat16)) : graph.Node("Identity", [from], [to]);
        }

        return graph;
    }

    internal static void Save(string folder, string component, byte[] model)
    {
        Directory.CreateDirectory(Path.Combine(folder, component));
        File.WriteAllBytes(Path.Combine(folder, component, "model.onnx"), model);
    }
}
