using System.Globalization;
using Atelier.Engine.Onnx;
using Atelier.Engine.Text;
using Microsoft.ML.OnnxRuntime;

namespace Atelier.Engine.Lora;

/// <summary>
/// A LoRA a generation applies: its name (as the prompt gives it), its safetensors file, and A1111's multipliers for
/// the text encoder and the UNet (<c>&lt;lora:name:te:unet&gt;</c>; one number is both).
/// </summary>
public sealed record LoraUse(string Name, string Path, double TextWeight, double UnetWeight)
{
    /// <summary>
    /// The LoRAs a prompt names (<c>&lt;lora:name&gt;</c>, <c>&lt;lora:name:0.8&gt;</c>, <c>&lt;lora:name:te:unet&gt;</c>, or
    /// <c>te=</c>/<c>unet=</c>), resolved by <paramref name="find"/> (a file path, or null when there is no such LoRA).
    /// </summary>
    public static (IReadOnlyList<LoraUse> Found, IReadOnlyList<string> Missing) FromPrompt(string prompt, Func<string, string?> find)
    {
        var found = new List<LoraUse>();
        var missing = new List<string>();
        foreach (var network in ExtraNetworks.Strip(prompt).Networks.Where(n => n.Kind == "lora"))
        {
            var positional = network.Arguments.Skip(1).Where(a => !a.Contains('=', StringComparison.Ordinal)).ToList();
            double? Named(string key) => network.Arguments.Skip(1).Select(a => a.Split('=', 2)).Where(p => p.Length == 2 && p[0].Trim() == key)
                .Select(p => (double?)Number(p[1])).LastOrDefault();
            var te = Named("te") ?? (positional.Count > 0 ? Number(positional[0]) : 1);
            var unet = Named("unet") ?? (positional.Count > 1 ? Number(positional[1]) : te);
            if (find(network.Name) is { } path)
            {
                found.Add(new LoraUse(network.Name, path, te, unet));
            }
            else
            {
                missing.Add(network.Name);
            }
        }

        return (found, missing);
    }

    private static double Number(string s) => double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 1;
}

/// <summary>
/// One ONNX model's weights with LoRAs merged in (W + Σ multiplier · alpha/rank · up·down), by initializer name, as the
/// raw bytes that a copy of the model carries instead of the file's (<see cref="OnnxGraph.WithInitializers"/>: ONNX
/// Runtime's own overrides are taken only in the memory its provider plans, so CUDA ignored host ones). LoRA keys are kohya's
/// (<c>lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight</c>); a module is found by its initializer's name
/// (<c>down_blocks.0.attentions.0.proj_in.weight</c>) or, for a weight that PyTorch's exporter stored transposed under
/// a generated name for a MatMul, by the MatMul node's name (<c>/text_model/encoder/layers.0/self_attn/q_proj/MatMul</c>).
/// </summary>
public sealed class LoraPatch
{
    private LoraPatch()
    {
    }

    /// <summary>Initializer name → the merged weights (the model's element type and shape, raw little-endian bytes).</summary>
    public Dictionary<string, (int ElementType, long[] Dims, byte[] Raw)> Initializers { get; } = new(StringComparer.Ordinal);

    /// <summary>How many LoRA modules were merged into this model.</summary>
    public int Merged { get; private set; }

    /// <summary>LoRA modules for this model that it has no weight for (or of another shape), named as in the file.</summary>
    public List<string> Unmatched { get; } = [];

    /// <summary>
    /// The patch for the model at <paramref name="modelPath"/> from the LoRA modules whose keys start with
    /// <paramref name="prefix"/> (<c>lora_unet_</c>, <c>lora_te_</c>); null when none of them is for this model.
    /// </summary>
    public static LoraPatch? Compute(string modelPath, string prefix, IEnumerable<(SafeTensors File, double Weight)> loras)
    {
        const string down = ".lora_down.weight";
        var wanted = loras.Where(l => l.Weight != 0)
            .SelectMany(l => l.File.Tensors.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && k.EndsWith(down, StringComparison.Ordinal))
                .Select(k => (l.File, l.Weight, Module: k[prefix.Length..^down.Length])))
            .ToList();
        if (wanted.Count == 0)
        {
            return null;
        }

        var graph = OnnxReader.Read(modelPath);
        var targets = Targets(graph);
        var patch = new LoraPatch();
        var merged = new Dictionary<string, (OnnxTensorInfo Tensor, bool Transposed, float[] Values)>(StringComparer.Ordinal);
        foreach (var (file, weight, module) in wanted)
        {
            var key = prefix + module;
            if (!targets.TryGetValue(module, out var target) || !file.Tensors.TryGetValue(key + ".lora_up.weight", out var upInfo))
            {
                patch.Unmatched.Add(key);
                continue;
            }

            var downInfo = file.Tensors[key + down];
            if (downInfo.Shape.Length == 0 || upInfo.Shape.Length == 0 || downInfo.Count > int.MaxValue || upInfo.Count > int.MaxValue)
            {
                patch.Unmatched.Add(key);
                continue;
            }

            var rank = (int)downInfo.Shape[0];
            var outputs = (int)upInfo.Shape[0];
            var inputs = rank == 0 ? 0 : (int)(downInfo.Count / rank);
            var tensor = graph.Initializers[target.Initializer];
            var shapeFits = rank > 0 && upInfo.Count == (long)outputs * rank && tensor.Count == (long)outputs * inputs
                            && (!target.Transposed || (tensor.Dims.Length == 2 && tensor.Dims[0] == inputs && tensor.Dims[1] == outputs))
                            && (target.Transposed || tensor.Dims[0] == outputs);
            if (!shapeFits)
            {
                patch.Unmatched.Add(key);
                continue;
            }

            var alpha = file.Tensors.TryGetValue(key + ".alpha", out var alphaInfo) && alphaInfo.Count == 1 ? file.ReadFloats(alphaInfo)[0] : rank;
            var scale = (float)(weight * alpha / rank);
            if (!merged.TryGetValue(target.Initializer, out var entry))
            {
                entry = (tensor, target.Transposed, OnnxReader.ReadFloats(tensor));
                merged[target.Initializer] = entry;
            }

            var up = file.ReadFloats(upInfo);
            var dn = file.ReadFloats(downInfo);
            var w = entry.Values;
            Parallel.For(0, outputs, o =>
            {
                for (var i = 0; i < inputs; i++)
                {
                    float sum = 0;
                    for (var r = 0; r < rank; r++)
                    {
                        sum += up[(o * rank) + r] * dn[(r * inputs) + i];
                    }

                    w[target.Transposed ? (i * outputs) + o : (o * inputs) + i] += scale * sum;
                }
            });
            patch.Merged++;
        }

        foreach (var (name, (tensor, _, values)) in merged)
        {
            patch.Initializers[name] = (tensor.ElementType, tensor.Dims, OnnxGraph.RawBytes(values, tensor.ElementType));
        }

        return patch;
    }

    /// <summary>Module (kohya's form: the PyTorch path with '_' for '.') → the initializer holding its weight, and whether it is stored transposed.</summary>
    private static Dictionary<string, (string Initializer, bool Transposed)> Targets(OnnxReader.Graph graph)
    {
        var targets = new Dictionary<string, (string, bool)>(StringComparer.Ordinal);
        foreach (var name in graph.Initializers.Keys.Where(n => n.EndsWith(".weight", StringComparison.Ordinal)))
        {
            targets[name[..^".weight".Length].Replace('.', '_')] = (name, false);
        }

        foreach (var node in graph.Nodes.Where(n => n.OpType is "MatMul" or "Gemm" && n.Inputs.Count > 1 && n.Name.StartsWith('/')))
        {
            var weight = node.Inputs[1];
            if (!graph.Initializers.ContainsKey(weight) || weight.EndsWith(".weight", StringComparison.Ordinal))
            {
                continue;
            }

            // "/text_model/encoder/layers.0/self_attn/q_proj/MatMul" → text_model.encoder.layers.0.self_attn.q_proj; a
            // MatMul takes x·Wᵀ, so the weight is stored [in, out]; PyTorch exports Linear as Gemm with transB (stored [out, in]).
            var path = node.Name.TrimStart('/');
            var module = path[..Math.Max(0, path.LastIndexOf('/'))].Replace('/', '.').Replace('.', '_');
            if (module.Length > 0)
            {
                targets.TryAdd(module, (weight, node.OpType == "MatMul"));
            }
        }

        return targets;
    }

}
