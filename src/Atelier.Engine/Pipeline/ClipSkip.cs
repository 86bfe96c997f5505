using System.Globalization;
using System.Text.RegularExpressions;
using Atelier.Engine.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Atelier.Engine.Pipeline;

/// <summary>
/// A1111's <c>CLIP_stop_at_last_layers</c> ("clip skip") on an ONNX text encoder that only outputs its last layer: the
/// model is loaded a second time with the hidden state entering each layer made a graph output (found by the node names
/// PyTorch's exporter writes, <c>/text_model/encoder/layers.N/…</c>: the first input of layer N's first node), and the
/// chosen one is put through the encoder's final layer norm here, as A1111 does (<c>final_layer_norm(hidden_states[-n])</c>).
/// </summary>
internal sealed partial class ClipSkip : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _layerInputs;
    private readonly float[] _gamma;
    private readonly float[] _beta;

    private ClipSkip(InferenceSession session, string[] layerInputs, float[] gamma, float[] beta)
    {
        _session = session;
        _layerInputs = layerInputs;
        _gamma = gamma;
        _beta = beta;
    }

    /// <summary>The encoder's layer count: clip skip n (2 ≤ n ≤ layers + 1) takes the hidden state entering layer (layers − n + 1).</summary>
    public int Layers => _layerInputs.Length;

    [GeneratedRegex(@"^/text_model/encoder/layers\.(\d+)/")]
    private static partial Regex LayerNode();

    /// <summary>The clip-skip encoder for the model at <paramref name="path"/>, or null with the reason when the model does not show its layers.</summary>
    public static (ClipSkip? Encoder, string? Why) Open(string path, SessionOptions options, TensorElementType hiddenType)
    {
        var graph = OnnxReader.Read(path);
        // The hidden state entering layer N: the input of its layer_norm1 (else of its first node, in graph order).
        var firsts = new SortedDictionary<int, string>();
        var norms = new Dictionary<int, string>();
        foreach (var node in graph.Nodes)
        {
            if (LayerNode().Match(node.Name) is { Success: true } m && node.Inputs.Count > 0)
            {
                var layer = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
                firsts.TryAdd(layer, node.Inputs[0]);
                if (node.Name.Contains("/layer_norm1/", StringComparison.Ordinal))
                {
                    norms.TryAdd(layer, node.Inputs[0]);
                }
            }
        }

        foreach (var (layer, input) in norms)
        {
            firsts[layer] = input;
        }

        if (firsts.Count == 0 || firsts.Keys.Last() != firsts.Count - 1)
        {
            return (null, "its text encoder does not name its layers (/text_model/encoder/layers.N/…)");
        }

        if (!graph.Initializers.TryGetValue("text_model.final_layer_norm.weight", out var weight) || !graph.Initializers.TryGetValue("text_model.final_layer_norm.bias", out var bias))
        {
            return (null, "its text encoder has no text_model.final_layer_norm weights");
        }

        if (graph.Initializers.Values.Any(t => t.File != Path.GetFullPath(path)))
        {
            return (null, "its text encoder keeps its weights in external data files");
        }

        var layerInputs = firsts.Values.ToArray();
        var model = OnnxGraph.WithOutputs(File.ReadAllBytes(path), [.. layerInputs.Distinct().Select(n => (n, (int)hiddenType))]);
        var session = new InferenceSession(model, options);
        return (new ClipSkip(session, layerInputs, OnnxReader.ReadFloats(weight), OnnxReader.ReadFloats(bias)), null);
    }

    /// <summary>One 77-token chunk's hidden states for clip skip <paramref name="skip"/>, after the final layer norm (CLIP's ε 1e-5).</summary>
    public float[] Encode(OrtValue inputIds, int skip)
    {
        var output = _layerInputs[Layers - skip + 1];
        using var options = new RunOptions();
        using var outputs = _session.Run(options, new Dictionary<string, OrtValue> { ["input_ids"] = inputIds }, [output]);
        var states = ExecutionProviders.ReadFloats(outputs[0]);
        var width = _gamma.Length;
        for (var t = 0; t < states.Length / width; t++)
        {
            var row = states.AsSpan(t * width, width);
            double mean = 0, variance = 0;
            foreach (var v in row)
            {
                mean += v;
            }

            mean /= width;
            foreach (var v in row)
            {
                variance += (v - mean) * (v - mean);
            }

            var scale = 1 / Math.Sqrt((variance / width) + 1e-5);
            for (var k = 0; k < width; k++)
            {
                row[k] = (float)(((row[k] - mean) * scale * _gamma[k]) + _beta[k]);
            }
        }

        return states;
    }

    public void Dispose() => _session.Dispose();
}
