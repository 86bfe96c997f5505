using System.Globalization;
using System.Text.RegularExpressions;
using Atelier.Engine.Lora;
using Atelier.Engine.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Atelier.Engine.Pipeline;

/// <summary>
/// The text encoder opened once more for what its plain session cannot do, with the pipeline's LoRAs merged as there:
/// <list type="bullet">
/// <item>A1111's <c>CLIP_stop_at_last_layers</c> ("clip skip"): the hidden state entering each layer made a graph output
/// (found by the node names PyTorch's exporter writes, <c>/text_model/encoder/layers.N/…</c>: the input of layer N's
/// layer_norm1), the chosen one put through the encoder's final layer norm here, as A1111 does
/// (<c>final_layer_norm(hidden_states[-n])</c>).</item>
/// <item>Textual-inversion embeddings: the token table (<c>text_model.embeddings.token_embedding.weight</c>) written into
/// the variant's copy of the model with the embeddings' vectors as extra rows, which the prompt reaches by ids past the
/// vocabulary.</item>
/// </list>
/// Used by reference (<see cref="SharedNative"/>): a variant the pipeline drops is freed when its last user is done.
/// </summary>
internal sealed partial class TextEncoderVariant : SharedNative
{
    public const string TokenTable = "text_model.embeddings.token_embedding.weight";

    private readonly InferenceSession _session;
    private readonly string[] _layerInputs;
    private readonly float[] _gamma;
    private readonly float[] _beta;

    private TextEncoderVariant(InferenceSession session, string[] layerInputs, float[] gamma, float[] beta)
    {
        _session = session;
        _layerInputs = layerInputs;
        _gamma = gamma;
        _beta = beta;
    }

    /// <summary>The encoder's layer count (0 without clip skip): clip skip n (2 ≤ n ≤ layers + 1) takes the hidden state entering layer (layers − n + 1).</summary>
    public int Layers => _layerInputs.Length;

    /// <summary>The ids the embeddings' vectors take, in the order they were given (empty without embeddings).</summary>
    public IReadOnlyList<EmbeddingTokens> Embeddings { get; private init; } = [];

    [GeneratedRegex(@"^/text_model/encoder/layers\.(\d+)/")]
    private static partial Regex LayerNode();

    /// <summary>
    /// Opens the variant: with <paramref name="layers"/> the hidden states as outputs (clip skip), with
    /// <paramref name="embeddings"/> the token table grown by their vectors. Null with the reason when the model does
    /// not show what that needs (layer names, the final layer norm, the token table). <paramref name="patched"/> holds
    /// the pipeline's LoRA-merged weights of this encoder, written into the variant's copy as into the plain session's.
    /// </summary>
    public static (TextEncoderVariant? Variant, string? Why) Open(string path, SessionOptions options, TensorElementType hiddenType, bool layers,
        IReadOnlyList<(Embedding Embedding, IReadOnlyList<int> NameIds)> embeddings, IReadOnlyDictionary<string, (int ElementType, long[] Dims, byte[] Raw)>? patched = null)
    {
        var graph = OnnxReader.Read(path);
        var full = Path.GetFullPath(path);
        if (graph.Initializers.Values.Any(t => t.File != full))
        {
            return (null, "its text encoder keeps its weights in external data files");
        }

        string[] layerInputs = [];
        float[] gamma = [], beta = [];
        if (layers)
        {
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

            layerInputs = [.. firsts.Values];
            (gamma, beta) = (OnnxReader.ReadFloats(weight), OnnxReader.ReadFloats(bias));
        }

        var replaced = new Dictionary<string, (int ElementType, long[] Dims, byte[] Raw)>(patched ?? new Dictionary<string, (int, long[], byte[])>(), StringComparer.Ordinal);
        var tokens = new List<EmbeddingTokens>();
        if (embeddings.Count > 0)
        {
            if (!graph.Initializers.TryGetValue(TokenTable, out var info) || info.Dims.Length != 2)
            {
                return (null, $"its text encoder has no {TokenTable}");
            }

            var (rows, width) = ((int)info.Dims[0], (int)info.Dims[1]);
            if (embeddings.Select(e => e.Embedding).FirstOrDefault(e => e.Width != width) is { } other)
            {
                return (null, $"embedding {other.Name} has vectors of {other.Width}; this text encoder's are {width}");
            }

            var grown = new List<float>(OnnxReader.ReadFloats(info));
            var next = rows;
            foreach (var (embedding, nameIds) in embeddings)
            {
                grown.AddRange(embedding.Vectors);
                tokens.Add(new EmbeddingTokens(nameIds, next, embedding.Count));
                next += embedding.Count;
            }

            replaced[TokenTable] = (info.ElementType, [next, width], OnnxGraph.RawBytes(grown.ToArray(), info.ElementType));
        }

        var model = File.ReadAllBytes(path);
        if (layers)
        {
            model = OnnxGraph.WithOutputs(model, [.. layerInputs.Distinct().Select(n => (n, (int)hiddenType))]);
        }

        if (replaced.Count > 0)
        {
            model = OnnxGraph.WithInitializers(model, replaced);
        }

        return (new TextEncoderVariant(new InferenceSession(model, options), layerInputs, gamma, beta) { Embeddings = tokens }, null);
    }

    /// <summary>One 77-token chunk's hidden states: the last layer's (clip skip 1), or for clip skip n the state n − 1 layers before the end through the final layer norm (CLIP's ε 1e-5).</summary>
    public float[] Encode(OrtValue inputIds, int skip)
    {
        var output = skip <= 1 ? "last_hidden_state" : _layerInputs[Layers - skip + 1];
        using var options = new RunOptions();
        using var outputs = _session.Run(options, new Dictionary<string, OrtValue> { ["input_ids"] = inputIds }, [output]);
        var states = ExecutionProviders.ReadFloats(outputs[0]);
        if (skip <= 1)
        {
            return states;
        }

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

    protected override void Free()
    {
        _session.Dispose();
    }
}
