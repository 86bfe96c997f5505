using System.Text.Json;
using Atelier.Engine.Sampling;
using Atelier.Engine.Text;

namespace Atelier.Engine.Onnx;

/// <summary>
/// The demo model: a synthetic Stable-Diffusion-shaped pipeline, built by code (no download), whose pictures are smooth
/// and follow the prompt. Nothing in it is learned. Words it knows are whole tokens of its vocabulary, and their
/// embeddings say what they mean: colour words (<c>red</c>, <c>blue</c>, …) colour the subject, shape words
/// (<c>sun</c>, <c>house</c>, <c>mountain</c>, …) choose its shape, scene words (<c>night</c>, <c>sunset</c>,
/// <c>sea</c>, …) set the sky and the ground; every other word moves the default colours, so any prompt gets a picture
/// of its own. A negative prompt pushes its colours away, as guidance does in a real model.
/// </summary>
/// <remarks>
/// <para>The UNet is a hand-written denoiser: from the text states it paints a target picture <c>T</c> in latent space
/// (a gradient background and a soft-edged shape), reads σ from the timestep through the training schedule, and
/// answers the noise that takes the sample to <c>T + β·blur(x − T)</c>. Every sampler therefore converges to the
/// picture, the blurred residue keeps a little of the seed's (or an init image's) low frequencies, and the same seed
/// gives the same picture. The VAE decoder upsamples bilinearly and scales each image by its largest value, so
/// classifier-free guidance, which multiplies the picture by the CFG scale, changes nothing but contrast.</para>
/// <para>It has the real input and output names and shapes of an exported SD 1.x pipeline, so the engine, the worker
/// and every client treat it as one.</para>
/// </remarks>
public static class DemoPainter
{
    private const int Hidden = 24;
    private const float Beta = 0.7f;
    private const float Sharpness = 30f;

    // Embedding layout: [0..2] subject rgb, [3] subject flag, [4..6] disc/square/triangle, [7..9] sky rgb, [10..12] ground rgb,
    // [13] scene flag, [14..23] the word's own direction (for words without a meaning).
    private static readonly Dictionary<string, (int R, int G, int B)> Colours = new(StringComparer.Ordinal)
    {
        ["red"] = (220, 40, 40), ["orange"] = (245, 140, 30), ["yellow"] = (245, 215, 50), ["green"] = (60, 170, 70),
        ["blue"] = (40, 90, 220), ["purple"] = (140, 60, 190), ["violet"] = (150, 90, 220), ["pink"] = (240, 130, 180),
        ["white"] = (245, 245, 245), ["black"] = (20, 20, 25), ["brown"] = (130, 80, 40), ["gray"] = (128, 128, 128),
        ["grey"] = (128, 128, 128), ["gold"] = (220, 175, 50), ["golden"] = (220, 175, 50), ["teal"] = (30, 150, 150),
        ["cyan"] = (60, 200, 230), ["magenta"] = (210, 50, 160), ["silver"] = (190, 195, 205), ["navy"] = (20, 30, 90),
        ["crimson"] = (170, 20, 40), ["turquoise"] = (60, 210, 190), ["lime"] = (150, 230, 60),
    };

    private static readonly Dictionary<string, int> Shapes = new(StringComparer.Ordinal)
    {
        ["circle"] = 0, ["sun"] = 0, ["moon"] = 0, ["ball"] = 0, ["planet"] = 0, ["orb"] = 0, ["apple"] = 0, ["dot"] = 0,
        ["bubble"] = 0, ["flower"] = 0, ["face"] = 0, ["square"] = 1, ["box"] = 1, ["house"] = 1, ["window"] = 1,
        ["cube"] = 1, ["block"] = 1, ["building"] = 1, ["tower"] = 1, ["door"] = 1, ["lighthouse"] = 1, ["castle"] = 1, ["triangle"] = 2, ["mountain"] = 2,
        ["mountains"] = 2, ["hill"] = 2, ["tree"] = 2, ["pyramid"] = 2, ["tent"] = 2, ["peak"] = 2, ["volcano"] = 2,
    };

    private static readonly Dictionary<string, ((int, int, int) Sky, (int, int, int) Ground)> Scenes = new(StringComparer.Ordinal)
    {
        ["night"] = ((10, 15, 45), (25, 25, 40)), ["dark"] = ((15, 15, 20), (30, 30, 35)), ["sky"] = ((120, 180, 240), (200, 225, 250)),
        ["day"] = ((120, 180, 240), (110, 170, 90)), ["sunset"] = ((250, 120, 60), (90, 40, 110)), ["dusk"] = ((120, 70, 150), (250, 140, 80)), ["sunrise"] = ((250, 180, 110), (120, 90, 160)),
        ["sea"] = ((150, 200, 240), (20, 70, 150)), ["ocean"] = ((150, 200, 240), (20, 70, 150)), ["water"] = ((170, 210, 240), (30, 90, 170)),
        ["desert"] = ((240, 200, 140), (220, 170, 100)), ["forest"] = ((150, 200, 170), (30, 90, 40)), ["snow"] = ((210, 220, 235), (245, 245, 250)),
        ["space"] = ((5, 5, 15), (20, 10, 40)), ["field"] = ((140, 190, 240), (90, 160, 60)), ["beach"] = ((140, 200, 240), (230, 210, 150)),
    };

    public static void Write(string folder)
    {
        Directory.CreateDirectory(folder);
        var words = Colours.Keys.Concat(Shapes.Keys).Concat(Scenes.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var vocab = WriteTokenizer(Path.Combine(folder, "tokenizer"), words);
        WriteTextEncoder(folder, vocab);
        WriteUnet(folder);
        WriteVae(folder);
        TinyPipeline.WriteConfigs(folder, "demo painter: no learned weights");
    }

    /// <summary>
    /// The byte alphabet (with and without the end-of-word mark), each known word as one token, the special tokens. The
    /// merges are grown until the tokenizer reads every known word as its own token: a word whose pieces do not join
    /// yet gets the merge of its first two pieces, at the lowest rank, so earlier merges keep their meaning.
    /// </summary>
    private static Dictionary<string, int> WriteTokenizer(string folder, IReadOnlyList<string> words)
    {
        Directory.CreateDirectory(folder);
        var symbols = new List<string>();
        symbols.AddRange(ClipTokenizer.ByteAlphabet);
        symbols.AddRange(ClipTokenizer.ByteAlphabet.Select(c => c + "</w>"));
        var merges = new List<string>();
        Dictionary<string, int> vocab;
        for (var round = 0; ; round++)
        {
            vocab = symbols.Select((sym, i) => (sym, i)).ToDictionary(p => p.sym, p => p.i, StringComparer.Ordinal);
            vocab["<|startoftext|>"] = vocab.Count;
            vocab["<|endoftext|>"] = vocab.Count;
            File.WriteAllText(Path.Combine(folder, "vocab.json"), JsonSerializer.Serialize(vocab));
            File.WriteAllLines(Path.Combine(folder, "merges.txt"), ["#version: 0.2", .. merges]);
            var names = vocab.ToDictionary(p => p.Value, p => p.Key);
            var tokenizer = ClipTokenizer.Load(folder);
            var grown = false;
            foreach (var word in words)
            {
                var pieces = tokenizer.Encode(word).Select(id => names[id]).ToList();
                if (pieces.Count > 1)
                {
                    merges.Add($"{pieces[0]} {pieces[1]}");
                    if (!vocab.ContainsKey(pieces[0] + pieces[1]))
                    {
                        symbols.Add(pieces[0] + pieces[1]);
                    }

                    grown = true;
                    break;
                }
            }

            if (!grown)
            {
                return vocab;
            }

            if (round > 10_000)
            {
                throw new InvalidOperationException("The demo vocabulary did not settle.");
            }
        }
    }

    private static float Unit(int channel) => (channel / 127.5f) - 1f;

    /// <summary>A plain lookup: each token's embedding is its meaning (above); the start and end tokens (and padding) are zero.</summary>
    private static void WriteTextEncoder(string folder, Dictionary<string, int> vocab)
    {
        var rng = new Random(20261129);
        var emb = new float[vocab.Count * Hidden];
        foreach (var (token, id) in vocab)
        {
            var row = emb.AsSpan(id * Hidden, Hidden);
            if (token.StartsWith("<|", StringComparison.Ordinal))
            {
                continue;
            }

            var word = token.EndsWith("</w>", StringComparison.Ordinal) ? token[..^4] : null;
            if (word is not null && Colours.TryGetValue(word, out var c))
            {
                (row[0], row[1], row[2], row[3]) = (Unit(c.R), Unit(c.G), Unit(c.B), 1f);
            }
            else if (word is not null && Shapes.TryGetValue(word, out var shape))
            {
                row[4 + shape] = 1f;
            }
            else if (word is not null && Scenes.TryGetValue(word, out var scene))
            {
                (row[7], row[8], row[9]) = (Unit(scene.Sky.Item1), Unit(scene.Sky.Item2), Unit(scene.Sky.Item3));
                (row[10], row[11], row[12], row[13]) = (Unit(scene.Ground.Item1), Unit(scene.Ground.Item2), Unit(scene.Ground.Item3), 1f);
            }
            else
            {
                for (var k = 14; k < Hidden; k++)
                {
                    row[k] = (float)((rng.NextDouble() * 2) - 1);
                }
            }
        }

        // The subject's colour fades with the position of its word, so the first colour named is the subject's ("a red
        // ball on a blue rug" is a red ball): a weight per position for the colour parts, 1 for the rest.
        const int maxLength = 512;
        var position = new float[maxLength * Hidden];
        for (var t = 0; t < maxLength; t++)
        {
            for (var k = 0; k < Hidden; k++)
            {
                position[(t * Hidden) + k] = k <= 3 ? MathF.Pow(0.7f, Math.Max(0, t - 1)) : 1f;
            }
        }

        TinyPipeline.Save(folder, "text_encoder", new OnnxGraph()
            .Input("input_ids", OnnxGraph.ElementInt32, "batch", "sequence")
            .Constant("emb", emb, vocab.Count, Hidden)
            .Constant("position", position, 1, maxLength, Hidden)
            .ConstantInt64("starts", [0], 1)
            .ConstantInt64("axes", [1], 1)
            .ConstantInt64("seq_index", [1], 1)
            .Node("Shape", ["input_ids"], ["ids_shape"])
            .Node("Gather", ["ids_shape", "seq_index"], ["ends"], ("axis", 0L))
            .Node("Slice", ["position", "starts", "ends", "axes"], ["position_used"])
            .Node("Cast", ["input_ids"], ["ids64"], ("to", (long)OnnxGraph.ElementInt64))
            .Node("Gather", ["emb", "ids64"], ["plain_states"], ("axis", 0L))
            .Node("Mul", ["plain_states", "position_used"], ["last_hidden_state"])
            .Node("ReduceMean", ["last_hidden_state"], ["pooler_output"], ("axes", new long[] { 1 }), ("keepdims", 0L))
            .Output("last_hidden_state", OnnxGraph.ElementFloat, "batch", "sequence", Hidden)
            .Output("pooler_output", OnnxGraph.ElementFloat, "batch", Hidden)
            .ToModel("text_encoder"));
    }

    /// <summary>A [Hidden, count] matrix that picks <paramref name="count"/> columns from <paramref name="first"/> on.</summary>
    private static float[] Pick(int first, int count)
    {
        var m = new float[Hidden * count];
        for (var j = 0; j < count; j++)
        {
            m[((first + j) * count) + j] = 1f;
        }

        return m;
    }

    private static float[] RandomMatrix(Random rng, int rows, int cols, double scale) =>
        [.. Enumerable.Range(0, rows * cols).Select(_ => (float)(((rng.NextDouble() * 2) - 1) * scale))];

    private static void WriteUnet(string folder)
    {
        var rng = new Random(7);
        var logSigmas = new NoiseSchedule().Sigmas.Select(s => (float)Math.Log(s)).ToArray();
        var g = new OnnxGraph()
            .Input("sample", OnnxGraph.ElementFloat, "batch", 4, "height", "width")
            .Input("timestep", OnnxGraph.ElementFloat, "steps")
            .Input("encoder_hidden_states", OnnxGraph.ElementFloat, "batch", "sequence", Hidden)
            // σ from the timestep: the schedule's log σ, interpolated between the two training steps around it.
            .Constant("log_sigmas", logSigmas, logSigmas.Length)
            .ConstantInt64("last_step", [logSigmas.Length - 1])
            .ConstantInt64("one_i", [1])
            .ConstantInt64("zero_i", [0])
            .Node("Floor", ["timestep"], ["t0f"])
            .Node("Sub", ["timestep", "t0f"], ["frac"])
            .Node("Cast", ["t0f"], ["t0raw"], ("to", (long)OnnxGraph.ElementInt64))
            .Node("Max", ["t0raw", "zero_i"], ["t0lo"])
            .Node("Min", ["t0lo", "last_step"], ["t0"])
            .Node("Add", ["t0", "one_i"], ["t1raw"])
            .Node("Min", ["t1raw", "last_step"], ["t1"])
            .Node("Gather", ["log_sigmas", "t0"], ["l0"], ("axis", 0L))
            .Node("Gather", ["log_sigmas", "t1"], ["l1"], ("axis", 0L))
            .Node("Sub", ["l1", "l0"], ["dl"])
            .Node("Mul", ["dl", "frac"], ["dlf"])
            .Node("Add", ["l0", "dlf"], ["log_sigma"])
            .Node("Exp", ["log_sigma"], ["sigma"])
            .Constant("one", [1f])
            .Node("Mul", ["sigma", "sigma"], ["sigma2"])
            .Node("Add", ["sigma2", "one"], ["sigma2p1"])
            .Node("Sqrt", ["sigma2p1"], ["c_out"])
            .Node("Mul", ["sample", "c_out"], ["x"])

            // What the prompt says: sums over the sequence, split into the meaning's parts.
            .ConstantInt64("seq_axis", [1], 1)
            .Node("ReduceSum", ["encoder_hidden_states", "seq_axis"], ["sums"], ("keepdims", 0L))
            .Constant("pick_rgb", Pick(0, 3), Hidden, 3).Node("MatMul", ["sums", "pick_rgb"], ["rgb_sum"])
            .Constant("pick_flag", Pick(3, 1), Hidden, 1).Node("MatMul", ["sums", "pick_flag"], ["rgb_flag"])
            .Constant("pick_shape", Pick(4, 3), Hidden, 3).Node("MatMul", ["sums", "pick_shape"], ["shape_sum"])
            .Constant("pick_sky", Pick(7, 3), Hidden, 3).Node("MatMul", ["sums", "pick_sky"], ["sky_sum"])
            .Constant("pick_ground", Pick(10, 3), Hidden, 3).Node("MatMul", ["sums", "pick_ground"], ["ground_sum"])
            .Constant("pick_scene", Pick(13, 1), Hidden, 1).Node("MatMul", ["sums", "pick_scene"], ["scene_flag"])
            .Constant("pick_own", Pick(14, Hidden - 14), Hidden, Hidden - 14).Node("MatMul", ["sums", "pick_own"], ["own"])
            // The other words' direction, bounded whatever the prompt's length.
            .ConstantInt64("feature_axis", [1], 1)
            .Node("Mul", ["own", "own"], ["own2"])
            .Node("ReduceSum", ["own2", "feature_axis"], ["own2s"], ("keepdims", 1L))
            .Node("Add", ["own2s", "one"], ["own2s1"])
            .Node("Sqrt", ["own2s1"], ["own_norm"])
            .Constant("three", [3f])
            .Node("Div", ["own", "own_norm"], ["own_unit"])
            .Node("Mul", ["own_unit", "three"], ["own_b"])
            .Constant("to_subject", RandomMatrix(rng, Hidden - 14, 3, 0.7), Hidden - 14, 3)
            .Constant("to_sky", RandomMatrix(rng, Hidden - 14, 3, 0.5), Hidden - 14, 3)
            .Constant("to_ground", RandomMatrix(rng, Hidden - 14, 3, 0.5), Hidden - 14, 3)
            .Constant("soft", [0.6f])
            .Node("MatMul", ["own_b", "to_subject"], ["own_subject_raw"]).Node("Tanh", ["own_subject_raw"], ["own_subject"])
            .Node("MatMul", ["own_b", "to_sky"], ["own_sky_raw"]).Node("Tanh", ["own_sky_raw"], ["own_sky_t"]).Node("Mul", ["own_sky_t", "soft"], ["own_sky"])
            .Node("MatMul", ["own_b", "to_ground"], ["own_ground_raw"]).Node("Tanh", ["own_ground_raw"], ["own_ground_t"]).Node("Mul", ["own_ground_t", "soft"], ["own_ground"]);

        // Named colours are averaged (weighted by position); without any, the other words' colour.
        g.Constant("tiny", [1e-6f]).Constant("thousand", [1000f]);
        Blend(g, "subject", "rgb_sum", "rgb_flag", "own_subject");
        Blend(g, "sky", "sky_sum", "scene_flag", "own_sky");
        Blend(g, "ground", "ground_sum", "scene_flag", "own_ground");

        // Coordinates of the latent grid, 0..1 at cell centres.
        g.Node("Shape", ["sample"], ["shape"])
            .ConstantInt64("h_index", [2]).ConstantInt64("w_index", [3])
            .Node("Gather", ["shape", "h_index"], ["h"], ("axis", 0L))
            .Node("Gather", ["shape", "w_index"], ["w"], ("axis", 0L))
            .Constant("half", [0.5f])
            .ConstantInt64("row", [1, 1, -1, 1], 4)
            .ConstantInt64("col", [1, 1, 1, -1], 4);
        foreach (var (axis, size, shape) in new[] { ("cy", "h", "row"), ("cx", "w", "col") })
        {
            g.Node("Range", ["zero_i", size, "one_i"], [axis + "_i"])
                .Node("Cast", [axis + "_i"], [axis + "_f"], ("to", (long)OnnxGraph.ElementFloat))
                .Node("Add", [axis + "_f", "half"], [axis + "_c"])
                .Node("Cast", [size], [size + "_f"], ("to", (long)OnnxGraph.ElementFloat))
                .Node("Div", [axis + "_c", size + "_f"], [axis + "_n"])
                .Node("Reshape", [axis + "_n", shape], [axis]);
        }

        // The shapes, soft-edged: a disc, a square, a mountain (a triangle standing on the ground).
        g.Constant("centre_y", [0.52f])
            .Node("Sub", ["cx", "half"], ["dx"]).Node("Sub", ["cy", "centre_y"], ["dy"])
            .Node("Mul", ["dx", "dx"], ["dx2"]).Node("Mul", ["dy", "dy"], ["dy2"]).Node("Add", ["dx2", "dy2"], ["r2"])
            .Constant("disc_r2", [0.09f]).Constant("sharp", [Sharpness]).Constant("sharp_r2", [Sharpness * 4])
            .Node("Sub", ["disc_r2", "r2"], ["disc_in"]).Node("Mul", ["disc_in", "sharp_r2"], ["disc_s"]).Node("Sigmoid", ["disc_s"], ["disc"])
            .Node("Abs", ["dx"], ["adx"]).Node("Abs", ["dy"], ["ady"]).Node("Max", ["adx", "ady"], ["box_d"])
            .Constant("box_r", [0.26f])
            .Node("Sub", ["box_r", "box_d"], ["box_in"]).Node("Mul", ["box_in", "sharp"], ["box_s"]).Node("Sigmoid", ["box_s"], ["box"])
            .Constant("apex_y", [0.22f]).Constant("slope", [1.3f]).Constant("base_y", [0.86f])
            .Node("Sub", ["cy", "apex_y"], ["below_apex"]).Node("Mul", ["adx", "slope"], ["flank"]).Node("Sub", ["below_apex", "flank"], ["tri_in"])
            .Node("Mul", ["tri_in", "sharp"], ["tri_s"]).Node("Sigmoid", ["tri_s"], ["tri_a"])
            .Node("Sub", ["base_y", "cy"], ["above_base"]).Node("Mul", ["above_base", "sharp"], ["base_s"]).Node("Sigmoid", ["base_s"], ["tri_b"])
            .Node("Mul", ["tri_a", "tri_b"], ["tri"])
            // How much of each: the shapes named (a disc when none is).
            .Node("Min", ["shape_sum", "one"], ["shape_w"])
            .Node("ReduceSum", ["shape_w", "feature_axis"], ["shape_total"], ("keepdims", 1L))
            .Node("Min", ["shape_total", "one"], ["any_shape"])
            .Node("Sub", ["one", "any_shape"], ["no_shape"])
            .Constant("pick0", [1f, 0f, 0f], 3, 1).Constant("pick1", [0f, 1f, 0f], 3, 1).Constant("pick2", [0f, 0f, 1f], 3, 1)
            .ConstantInt64("per_image", [-1, 1, 1, 1], 4)
            .Node("MatMul", ["shape_w", "pick0"], ["w_disc_named"]).Node("Add", ["w_disc_named", "no_shape"], ["w_disc_2d"])
            .Node("MatMul", ["shape_w", "pick1"], ["w_box_2d"]).Node("MatMul", ["shape_w", "pick2"], ["w_tri_2d"])
            .Node("Reshape", ["w_disc_2d", "per_image"], ["w_disc"]).Node("Reshape", ["w_box_2d", "per_image"], ["w_box"]).Node("Reshape", ["w_tri_2d", "per_image"], ["w_tri"])
            .Node("Mul", ["disc", "w_disc"], ["m_disc"]).Node("Mul", ["box", "w_box"], ["m_box"]).Node("Mul", ["tri", "w_tri"], ["m_tri"])
            .Node("Add", ["m_disc", "m_box"], ["m_db"]).Node("Add", ["m_db", "m_tri"], ["m_all"]).Node("Min", ["m_all", "one"], ["mask"])

            // The picture: sky to ground from top to bottom, the subject over it, lit from the top left.
            .ConstantInt64("per_colour", [-1, 3, 1, 1], 4)
            .Node("Reshape", ["sky", "per_colour"], ["sky4"]).Node("Reshape", ["ground", "per_colour"], ["ground4"]).Node("Reshape", ["subject", "per_colour"], ["subject4"])
            .Node("Sub", ["one", "cy"], ["up"])
            .Node("Mul", ["sky4", "up"], ["sky_part"]).Node("Mul", ["ground4", "cy"], ["ground_part"]).Node("Add", ["sky_part", "ground_part"], ["background"])
            .Constant("light", [-0.35f]).Node("Add", ["dx", "dy"], ["diag"]).Node("Mul", ["diag", "light"], ["lit"]).Node("Add", ["lit", "one"], ["shade"])
            .Node("Mul", ["subject4", "shade"], ["subject_lit"])
            .Node("Sub", ["one", "mask"], ["unmask"])
            .Node("Mul", ["background", "unmask"], ["bg_part"]).Node("Mul", ["subject_lit", "mask"], ["fg_part"]).Node("Add", ["bg_part", "fg_part"], ["picture"])
            // The fourth latent channel stays zero.
            .Constant("zero", [0f])
            .Node("ReduceMean", ["picture"], ["picture_mean"], ("axes", new long[] { 1 }), ("keepdims", 1L))
            .Node("Mul", ["picture_mean", "zero"], ["fourth"])
            .Node("Concat", ["picture", "fourth"], ["target"], ("axis", 1L))

            // The denoised sample: the target plus a share of the sample's own low frequencies; the noise that leads there.
            .Node("Sub", ["x", "target"], ["away"])
            .Constant("blur", [.. Enumerable.Repeat(1f / 25, 4 * 25)], 4, 1, 5, 5)
            .Node("Conv", ["away", "blur"], ["away_lf"], ("group", 4L), ("pads", new long[] { 2, 2, 2, 2 }))
            .Constant("beta", [Beta])
            .Node("Mul", ["away_lf", "beta"], ["kept"])
            .Node("Add", ["target", "kept"], ["denoised"])
            .Node("Sub", ["x", "denoised"], ["residual"])
            .Node("Div", ["residual", "sigma"], ["out_sample"])
            .Output("out_sample", OnnxGraph.ElementFloat, "batch", 4, "height", "width");
        TinyPipeline.Save(folder, "unet", g.ToModel("unet"));
    }

    /// <summary><paramref name="name"/> = the weighted mean sum / flag where anything was named, else <paramref name="fallback"/>.</summary>
    private static void Blend(OnnxGraph g, string name, string sum, string flag, string fallback) =>
        g.Node("Max", [flag, "tiny"], [name + "_count"])
            .Node("Div", [sum, name + "_count"], [name + "_named"])
            .Node("Mul", [flag, "thousand"], [name + "_flag_big"])
            .Node("Min", [name + "_flag_big", "one"], [name + "_has"])
            .Node("Sub", ["one", name + "_has"], [name + "_hasnt"])
            .Node("Mul", [fallback, name + "_hasnt"], [name + "_default"])
            .Node("Add", [name + "_named", name + "_default"], [name]);

    /// <summary>Decoder: bilinear ×8, scaled by the image's largest value (what guidance multiplies goes away). Encoder: its rough inverse.</summary>
    private static void WriteVae(string folder)
    {
        TinyPipeline.Save(folder, "vae_decoder", new OnnxGraph()
            .Input("latent_sample", OnnxGraph.ElementFloat, "batch", 4, "height", "width")
            .Constant("scales", [1f, 1f, 8f, 8f], 4)
            .Constant("to_rgb", [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], 3, 4, 1, 1)
            .Constant("floor", [0.35f])
            .Node("Resize", ["latent_sample", "", "scales"], ["up"], ("mode", "linear"))
            .Node("Conv", ["up", "to_rgb"], ["rgb"])
            .Node("Abs", ["rgb"], ["magnitude"])
            .Node("ReduceMax", ["magnitude"], ["peak_raw"], ("axes", new long[] { 1, 2, 3 }), ("keepdims", 1L))
            .Node("Max", ["peak_raw", "floor"], ["peak"])
            .Node("Div", ["rgb", "peak"], ["sample"])
            .Output("sample", OnnxGraph.ElementFloat, "batch", 3, "pixel_height", "pixel_width")
            .ToModel("vae_decoder"));
        TinyPipeline.Save(folder, "vae_encoder", new OnnxGraph()
            .Input("sample", OnnxGraph.ElementFloat, "batch", 3, "pixel_height", "pixel_width")
            // An 8×8 average per colour, at the scale the decoder reads (the pipeline multiplies by SD's latent scale, 0.18215).
            .Constant("w", [.. Enumerable.Range(0, 4 * 3 * 64).Select(i => i / 64 % 3 == i / 192 && i / 192 < 3 ? 1f / 64 / 0.18215f : 0f)], 4, 3, 8, 8)
            .Node("Conv", ["sample", "w"], ["latent_sample"], ("strides", new long[] { 8, 8 }))
            .Output("latent_sample", OnnxGraph.ElementFloat, "batch", 4, "height", "width")
            .ToModel("vae_encoder"));
    }
}
