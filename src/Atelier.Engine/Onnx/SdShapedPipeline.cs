using System.Buffers.Binary;

namespace Atelier.Engine.Onnx;

/// <summary>
/// The shape of the generated pipeline. The defaults are Stable Diffusion 1.5's: UNet channels 320/640/1280/1280 with two
/// ResNet blocks per level and cross-attention transformers at the first three, a CLIP ViT-L text encoder (12 layers,
/// 768 wide, 49,408 tokens), the VAE decoder with 512/512/256/128 channels. Smaller widths make the same graphs small
/// enough for tests.
/// </summary>
public sealed record SdShapedOptions(
    int BaseChannels = 320, int ContextWidth = 768, int TextLayers = 12, int VocabSize = 49408, int VaeChannels = 128, bool Fp16 = true, int Seed = 15);

/// <summary>
/// Writes a diffusers ONNX folder whose models have Stable Diffusion 1.5's interfaces, layer structure, sizes and compute
/// (convolutions, group norms, self- and cross-attention at the same resolutions and channel widths) with random
/// weights: what the engine's speed on a device can be measured with, without downloading a model. Its pictures are
/// noise. Float16 weights and tensors by default, as an fp16 export has them; the timestep stays fp32.
/// </summary>
public static class SdShapedPipeline
{
    public static void Write(string folder, SdShapedOptions? options = null)
    {
        var o = options ?? new SdShapedOptions();
        if (o.BaseChannels % 32 != 0 || o.VaeChannels % 32 != 0 || o.ContextWidth % 8 != 0)
        {
            throw new ArgumentException("channels must be multiples of 32 (group norms of 32 groups), the context width a multiple of 8", nameof(options));
        }

        Directory.CreateDirectory(folder);
        Save(folder, "text_encoder", TextEncoder(o));
        Save(folder, "unet", Unet(o));
        Save(folder, "vae_decoder", VaeDecoder(o));
        TinyPipeline.WriteTokenizer(Path.Combine(folder, "tokenizer"));
        TinyPipeline.WriteConfigs(folder, "random weights in Stable Diffusion 1.5's shapes, for measuring speed: its pictures are noise");
    }

    private static void Save(string folder, string component, Builder b)
    {
        Directory.CreateDirectory(Path.Combine(folder, component));
        b.Graph.WriteModel(Path.Combine(folder, component, "model.onnx"), component);
    }

    /// <summary>CLIP's text transformer: token and position embeddings, pre-norm layers with causal self-attention and a quick-GELU MLP.</summary>
    private static Builder TextEncoder(SdShapedOptions o)
    {
        var b = new Builder(o.Seed, o.Fp16);
        var c = o.ContextWidth;
        const int tokens = 77;
        b.Graph.Input("input_ids", OnnxGraph.ElementInt32, "batch", "sequence");
        var ids = b.Op("Cast", ["input_ids"], ("to", (long)OnnxGraph.ElementInt64));
        var x = b.Op("Gather", [b.Weight(0.02, o.VocabSize, c), ids], ("axis", 0L));
        x = b.Op("Add", [x, b.Weight(0.01, tokens, c)]);
        var mask = b.Values(tokens * tokens, i => i % tokens > i / tokens ? -10000f : 0f, tokens, tokens);
        var heads = Math.Max(1, c / 64);
        for (var layer = 0; layer < o.TextLayers; layer++)
        {
            var h = b.LayerNorm(x, c);
            x = b.Op("Add", [x, b.Attention(h, h, c, c, heads, mask)]);
            h = b.LayerNorm(x, c);
            var up = b.Linear(h, c, 4 * c);
            x = b.Op("Add", [x, b.Linear(b.QuickGelu(up), 4 * c, c)]);
        }

        b.Graph.Node("LayerNormalization", [x, b.Fill(1, c), b.Fill(0, c)], ["last_hidden_state"], ("axis", -1L), ("epsilon", 1e-5f));
        b.Graph.Output("last_hidden_state", b.Type, "batch", "sequence", c);
        return b;
    }

    /// <summary>SD 1.5's UNet: four levels down with skips, a middle block, four levels up, time embedding into every ResNet block.</summary>
    private static Builder Unet(SdShapedOptions o)
    {
        var b = new Builder(o.Seed + 1, o.Fp16);
        var c = o.BaseChannels;
        int[] widths = [c, 2 * c, 4 * c, 4 * c];
        b.Graph.Input("sample", b.Type, "batch", 4, "height", "width")
            .Input("timestep", OnnxGraph.ElementFloat, "steps")
            .Input("encoder_hidden_states", b.Type, "batch", "sequence", o.ContextWidth);

        // The timestep's sinusoidal embedding (fp32), then two linear layers to 4×base.
        var half = c / 2;
        var freqs = b.Floats(half, i => (float)Math.Exp(-Math.Log(10000) * i / half), 1, half);
        var t = b.Op("Unsqueeze", ["timestep", b.Ints(1)]);
        var args = b.Op("Mul", [t, freqs]);
        var sinusoid = b.Op("Concat", [b.Op("Cos", [args]), b.Op("Sin", [args])], ("axis", 1L));
        var temb = b.Op("Cast", [sinusoid], ("to", (long)b.Type));
        temb = b.Linear(b.Silu(b.Linear(temb, c, 4 * c)), 4 * c, 4 * c);
        var tembWidth = 4 * c;

        var x = b.Conv("sample", 4, c, 3);
        var skips = new Stack<(string Name, int Channels)>();
        skips.Push((x, c));
        var ch = c;
        for (var level = 0; level < 4; level++)
        {
            for (var j = 0; j < 2; j++)
            {
                x = b.ResBlock(x, ch, widths[level], temb, tembWidth);
                ch = widths[level];
                if (level < 3)
                {
                    x = b.Transformer(x, ch, "encoder_hidden_states", o.ContextWidth);
                }

                skips.Push((x, ch));
            }

            if (level < 3)
            {
                x = b.Conv(x, ch, ch, 3, stride: 2);
                skips.Push((x, ch));
            }
        }

        x = b.ResBlock(x, ch, ch, temb, tembWidth);
        x = b.Transformer(x, ch, "encoder_hidden_states", o.ContextWidth);
        x = b.ResBlock(x, ch, ch, temb, tembWidth);

        for (var level = 3; level >= 0; level--)
        {
            for (var j = 0; j < 3; j++)
            {
                var (skip, skipChannels) = skips.Pop();
                x = b.Op("Concat", [x, skip], ("axis", 1L));
                x = b.ResBlock(x, ch + skipChannels, widths[level], temb, tembWidth);
                ch = widths[level];
                if (level < 3)
                {
                    x = b.Transformer(x, ch, "encoder_hidden_states", o.ContextWidth);
                }
            }

            if (level > 0)
            {
                x = b.Upsample(x, ch);
            }
        }

        x = b.Conv(b.Silu(b.GroupNorm(x, ch, 1e-5f)), ch, 4, 3);
        b.Graph.Node("Identity", [x], ["out_sample"]);
        b.Graph.Output("out_sample", b.Type, "batch", 4, "height", "width");
        return b;
    }

    /// <summary>SD's VAE decoder: a middle block with single-head attention, four levels up (three ResNet blocks each), 8× the latent size.</summary>
    private static Builder VaeDecoder(SdShapedOptions o)
    {
        var b = new Builder(o.Seed + 2, o.Fp16);
        var v = o.VaeChannels;
        int[] widths = [4 * v, 4 * v, 2 * v, v];
        b.Graph.Input("latent_sample", b.Type, "batch", 4, "height", "width");
        var x = b.Conv("latent_sample", 4, 4, 1);
        x = b.Conv(x, 4, widths[0], 3);
        var ch = widths[0];
        x = b.ResBlock(x, ch, ch, null, 0, 1e-6f);
        x = b.Op("Add", [x, b.SpatialAttention(x, ch)]);
        x = b.ResBlock(x, ch, ch, null, 0, 1e-6f);
        for (var level = 0; level < 4; level++)
        {
            for (var j = 0; j < 3; j++)
            {
                x = b.ResBlock(x, ch, widths[level], null, 0, 1e-6f);
                ch = widths[level];
            }

            if (level < 3)
            {
                x = b.Upsample(x, ch);
            }
        }

        x = b.Conv(b.Silu(b.GroupNorm(x, ch, 1e-6f)), ch, 3, 3);
        b.Graph.Node("Identity", [x], ["sample"]);
        b.Graph.Output("sample", b.Type, "batch", 3, "pixel_height", "pixel_width");
        return b;
    }

    /// <summary>Graph building blocks over <see cref="OnnxGraph"/>, with random weights scaled by fan-in so that activations stay finite in fp16.</summary>
    private sealed class Builder(int seed, bool fp16)
    {
        private readonly Random _rng = new(seed);
        private float[]? _pool;
        private int _names;

        public OnnxGraph Graph { get; } = new();

        public int Type { get; } = fp16 ? OnnxGraph.ElementFloat16 : OnnxGraph.ElementFloat;

        private string Name(string prefix) => $"{prefix}_{_names++}";

        public string Op(string op, string[] inputs, params (string Name, object Value)[] attributes)
        {
            var y = Name(op.ToLowerInvariant());
            Graph.Node(op, inputs, [y], attributes);
            return y;
        }

        /// <summary>Uniform random weights with the given standard deviation, drawn from a pool of a million values at a random offset.</summary>
        public string Weight(double std, params long[] dims)
        {
            _pool ??= [.. Enumerable.Range(0, 1 << 20).Select(_ => (float)((_rng.NextDouble() * 2) - 1))];
            var scale = (float)(std * Math.Sqrt(3));
            var offset = _rng.Next(_pool.Length);
            return Values(checked((int)dims.Aggregate(1L, (a, d) => a * d)), i => _pool[(offset + i) % _pool.Length] * scale, dims);
        }

        public string Fill(float value, params long[] dims) => Values(checked((int)dims.Aggregate(1L, (a, d) => a * d)), _ => value, dims);

        /// <summary>A constant in the graph's element type (fp16 or fp32).</summary>
        public string Values(int count, Func<int, float> value, params long[] dims)
        {
            var name = Name("w");
            var size = Type == OnnxGraph.ElementFloat16 ? 2 : 4;
            var raw = new byte[(long)count * size];
            for (var i = 0; i < count; i++)
            {
                if (size == 2)
                {
                    BinaryPrimitives.WriteHalfLittleEndian(raw.AsSpan(i * 2), (Half)value(i));
                }
                else
                {
                    BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(i * 4), value(i));
                }
            }

            Graph.ConstantRaw(name, Type, raw, dims);
            return name;
        }

        /// <summary>An fp32 constant, whatever the graph's type.</summary>
        public string Floats(int count, Func<int, float> value, params long[] dims)
        {
            var name = Name("f");
            Graph.Constant(name, [.. Enumerable.Range(0, count).Select(value)], dims);
            return name;
        }

        public string Ints(params long[] values)
        {
            var name = Name("i");
            Graph.ConstantInt64(name, values, values.Length);
            return name;
        }

        public string Conv(string x, int cin, int cout, int k, int stride = 1) =>
            Op("Conv", [x, Weight(1 / Math.Sqrt(cin * k * k), cout, cin, k, k), Fill(0, cout)],
                ("pads", new long[] { k / 2, k / 2, k / 2, k / 2 }), ("strides", new long[] { stride, stride }));

        public string Linear(string x, int cin, int cout, bool bias = true)
        {
            var y = Op("MatMul", [x, Weight(1 / Math.Sqrt(cin), cin, cout)]);
            return bias ? Op("Add", [y, Fill(0, cout)]) : y;
        }

        public string Silu(string x) => Op("Mul", [x, Op("Sigmoid", [x])]);

        /// <summary>x·σ(1.702x): CLIP's quick GELU, and the GELU of the transformers' GEGLU here.</summary>
        public string QuickGelu(string x) => Op("Mul", [x, Op("Sigmoid", [Op("Mul", [x, Fill(1.702f, 1)])])]);

        public string LayerNorm(string x, int c) => Op("LayerNormalization", [x, Fill(1, c), Fill(0, c)], ("axis", -1L), ("epsilon", 1e-5f));

        /// <summary>Group norm with 32 groups: instance norm over [N, 32, rest], then the per-channel scale and shift.</summary>
        public string GroupNorm(string x, int c, float epsilon)
        {
            var grouped = Op("Reshape", [x, Ints(0, 32, -1)]);
            var normed = Op("InstanceNormalization", [grouped, Fill(1, 32), Fill(0, 32)], ("epsilon", epsilon));
            var back = Op("Reshape", [normed, Op("Shape", [x])]);
            return Op("Add", [Op("Mul", [back, Fill(1, c, 1, 1)]), Fill(0, c, 1, 1)]);
        }

        public string ResBlock(string x, int cin, int cout, string? temb, int tembWidth, float epsilon = 1e-5f)
        {
            var h = Conv(Silu(GroupNorm(x, cin, epsilon)), cin, cout, 3);
            if (temb is not null)
            {
                h = Op("Add", [h, Op("Unsqueeze", [Linear(Silu(temb), tembWidth, cout), Ints(2, 3)])]);
            }

            h = Conv(Silu(GroupNorm(h, cout, epsilon)), cout, cout, 3);
            return Op("Add", [cin == cout ? x : Conv(x, cin, cout, 1), h]);
        }

        public string Upsample(string x, int c) =>
            Conv(Op("Resize", [x, "", Floats(4, i => i < 2 ? 1 : 2, 4)], ("mode", "nearest")), c, c, 3);

        /// <summary>Multi-head attention of <paramref name="x"/> [N, L, c] over <paramref name="context"/> [N, S, contextWidth].</summary>
        public string Attention(string x, string context, int c, int contextWidth, int heads, string? mask = null)
        {
            var d = c / heads;
            var q = Op("Transpose", [Op("Reshape", [Linear(x, c, c, bias: false), Ints(0, -1, heads, d)])], ("perm", new long[] { 0, 2, 1, 3 }));
            var k = Op("Transpose", [Op("Reshape", [Linear(context, contextWidth, c, bias: false), Ints(0, -1, heads, d)])], ("perm", new long[] { 0, 2, 3, 1 }));
            var v = Op("Transpose", [Op("Reshape", [Linear(context, contextWidth, c, bias: false), Ints(0, -1, heads, d)])], ("perm", new long[] { 0, 2, 1, 3 }));
            var scores = Op("Mul", [Op("MatMul", [q, k]), Fill((float)(1 / Math.Sqrt(d)), 1)]);
            if (mask is not null)
            {
                scores = Op("Add", [scores, mask]);
            }

            var attended = Op("MatMul", [Op("Softmax", [scores], ("axis", -1L)), v]);
            var merged = Op("Reshape", [Op("Transpose", [attended], ("perm", new long[] { 0, 2, 1, 3 })), Ints(0, -1, c)]);
            return Linear(merged, c, c);
        }

        /// <summary>SD 1.5's spatial transformer: group norm, 1×1 projection in, self-attention, cross-attention, GEGLU feed-forward, projection out, residual.</summary>
        public string Transformer(string x, int c, string context, int contextWidth)
        {
            var shape = Op("Shape", [x]);
            var h = Conv(GroupNorm(x, c, 1e-6f), c, c, 1);
            h = Op("Transpose", [Op("Reshape", [h, Ints(0, c, -1)])], ("perm", new long[] { 0, 2, 1 }));
            var n = LayerNorm(h, c);
            h = Op("Add", [h, Attention(n, n, c, c, 8)]);
            h = Op("Add", [h, Attention(LayerNorm(h, c), context, c, contextWidth, 8)]);
            var projected = Linear(LayerNorm(h, c), c, 8 * c);
            var a = Name("geglu_a");
            var g = Name("geglu_g");
            Graph.Node("Split", [projected, Ints(4 * c, 4 * c)], [a, g], ("axis", -1L));
            h = Op("Add", [h, Linear(Op("Mul", [a, QuickGelu(g)]), 4 * c, c)]);
            h = Op("Reshape", [Op("Transpose", [h], ("perm", new long[] { 0, 2, 1 })), shape]);
            return Op("Add", [x, Conv(h, c, c, 1)]);
        }

        /// <summary>The VAE's single-head attention over all positions, without the residual.</summary>
        public string SpatialAttention(string x, int c)
        {
            var shape = Op("Shape", [x]);
            var h = Op("Transpose", [Op("Reshape", [GroupNorm(x, c, 1e-6f), Ints(0, c, -1)])], ("perm", new long[] { 0, 2, 1 }));
            var attended = Attention(h, h, c, c, 1);
            return Op("Reshape", [Op("Transpose", [attended], ("perm", new long[] { 0, 2, 1 })), shape]);
        }
    }
}
