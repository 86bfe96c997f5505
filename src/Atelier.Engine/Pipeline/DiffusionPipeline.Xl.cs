using Atelier.Engine.Lora;
using Atelier.Engine.Text;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Atelier.Engine.Pipeline;

/// <summary>
/// SDXL pipelines (the diffusers ONNX layout Optimum exports: <c>text_encoder</c> (CLIP ViT-L), <c>text_encoder_2</c>
/// (OpenCLIP ViT-bigG with its projection) and a UNet that takes <c>text_embeds</c> and <c>time_ids</c> besides the
/// text conditioning), conditioned as AUTOMATIC1111 conditions them: each encoder's penultimate hidden state
/// (<c>hidden_states.(N − 1)</c> of its N + 1), emphasis applied to each encoder's output on its own, the two
/// concatenated per token (768 + 1280 = 2048), the second encoder's padding after the end token as OpenCLIP's id 0;
/// the pooled, projected embedding of the first chunk (<c>text_embeds</c>); the size and crop conditioning
/// [height, width, 0, 0, height, width]; and an empty negative prompt as zeros (A1111's <c>force_zero_negative_prompt</c>).
/// </summary>
public sealed partial class DiffusionPipeline
{
    /// <summary>OpenCLIP's padding id, after the end token (A1111's <c>id_pad</c> for the second SDXL encoder).</summary>
    private const int OpenClipPad = 0;

    /// <summary>A1111's <c>sdxl_refiner_high_aesthetic_score</c> and <c>sdxl_refiner_low_aesthetic_score</c> defaults: a refiner's time ids end with them.</summary>
    public const float RefinerPositiveAesthetic = 6f, RefinerNegativeAesthetic = 2.5f;

    private InferenceSession? _textEncoder2;
    private int _timeIdCount = 6;
    private string _hiddenOutput1 = "last_hidden_state";
    private string _hiddenOutput2 = "last_hidden_state";
    private TensorElementType _embedsType = TensorElementType.Float;
    private TensorElementType _timeIdsType = TensorElementType.Float;

    /// <summary>The model's VAE's latent scaling factor (its config's <c>scaling_factor</c>; SD 1.x's 0.18215 without one).</summary>
    public float LatentScale => _vae.LatentScale;

    /// <summary>Whether this is an SDXL pipeline (a second text encoder and a UNet that takes pooled text embeddings and time ids).</summary>
    public bool IsXl => _textEncoder2 is not null;

    /// <summary>Whether this is an SDXL refiner (the second text encoder alone, time ids ending with an aesthetic score).</summary>
    public bool IsRefiner { get; private set; }

    /// <summary>A folder with a second text encoder and no first: an SDXL refiner's.</summary>
    private static bool IsRefinerFolder(string folder) =>
        !File.Exists(Path.Combine(folder, "text_encoder", "model.onnx")) && File.Exists(Path.Combine(folder, "text_encoder_2", "model.onnx"));

    /// <summary>Opens the second text encoder of an SDXL folder (a refiner's only encoder is already open); nothing for an SD 1.x/2.x folder.</summary>
    private void OpenXl(string folder, SessionOptions options, bool refiner, LoraPatch? patch)
    {
        var second = Path.Combine(folder, "text_encoder_2", "model.onnx");
        var xlUnet = _unet.InputMetadata.ContainsKey("text_embeds") && _unet.InputMetadata.ContainsKey("time_ids");
        if (!File.Exists(second) && !xlUnet)
        {
            return;
        }

        if (!File.Exists(second) || !xlUnet)
        {
            throw new InvalidDataException(File.Exists(second)
                ? "the model has a text_encoder_2 but its UNet takes no text_embeds and time_ids: not an SDXL base model this engine can run"
                : "the UNet takes text_embeds and time_ids (SDXL) but the model has no text_encoder_2");
        }

        IsRefiner = refiner;
        _textEncoder2 = refiner ? _textEncoder : Open(second, options, _settings, patch);
        if (!_textEncoder2.OutputMetadata.ContainsKey("text_embeds"))
        {
            throw new InvalidDataException("text_encoder_2 has no text_embeds output (the pooled, projected embedding SDXL's UNet takes)");
        }

        _hiddenOutput1 = Penultimate(_textEncoder);
        _hiddenOutput2 = Penultimate(_textEncoder2);
        _embedsType = _unet.InputMetadata["text_embeds"].ElementDataType;
        _timeIdsType = _unet.InputMetadata["time_ids"].ElementDataType;
        var ids = _unet.InputMetadata["time_ids"].Dimensions;
        _timeIdCount = ids.Length == 2 && ids[1] > 0 ? ids[1] : refiner ? 5 : 6;

        // hidden_states.0 is the embeddings, hidden_states.N the last layer's output: the penultimate is N − 1.
        static string Penultimate(InferenceSession encoder)
        {
            var layers = encoder.OutputMetadata.Keys
                .Select(k => k.StartsWith("hidden_states.", StringComparison.Ordinal) && int.TryParse(k["hidden_states.".Length..], out var n) ? n : -1)
                .Where(n => n >= 0).ToList();
            return layers.Count >= 2 ? $"hidden_states.{layers.Max() - 1}" : "last_hidden_state";
        }
    }

    /// <summary>The conditioning of [negative, positive]: the text states, and for SDXL the pooled embeddings beside them.</summary>
    private sealed record Conditioning(float[] States, float[]? Pooled);

    /// <summary>The SDXL conditioning of a prompt pair as the UNet gets it (states [negative, positive], pooled [negative, positive]), for tools and tests.</summary>
    public (float[] States, float[] Pooled) EncodeXl(string prompt, string negative)
    {
        if (!IsXl)
        {
            throw new InvalidOperationException("not an SDXL pipeline");
        }

        ObjectDisposedException.ThrowIf(!TryEnter(), this);
        try
        {
            using var text = new TextPlan(null, 1);
            var c = EncodePrompts(prompt, negative, text);
            return (c.States, c.Pooled!);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Both encoders chunk by chunk, emphasis on each, concatenated per token; the first chunk's pooled embedding; zeros when <paramref name="zero"/>.</summary>
    private (float[] States, float[] Pooled) EncodeTextXl(PromptChunks chunks, bool zero)
    {
        var hidden = new List<float>();
        float[]? pooled = null;
        for (var c = 0; c < chunks.ChunkCount; c++)
        {
            var ids = chunks.Ids.AsSpan(c * ClipTokenizer.ContextLength, ClipTokenizer.ContextLength).ToArray();
            var weights = chunks.Weights.AsSpan(c * ClipTokenizer.ContextLength, ClipTokenizer.ContextLength).ToArray();
            var first = IsRefiner ? [] : Emphasize(Run(_textEncoder, ids, [_hiddenOutput1])[0], weights);
            // OpenCLIP pads with id 0 after the end token (A1111's process_tokens for the second encoder).
            var end = Array.IndexOf(ids, _tokenizer.EndId);
            var ids2 = (int[])ids.Clone();
            for (var i = end + 1; end >= 0 && i < ids2.Length; i++)
            {
                ids2[i] = OpenClipPad;
            }

            var outputs = Run(_textEncoder2!, ids2, [_hiddenOutput2, "text_embeds"]);
            var second = Emphasize(outputs[0], weights);
            pooled ??= outputs[1];
            var (w1, w2) = (first.Length / ClipTokenizer.ContextLength, second.Length / ClipTokenizer.ContextLength);
            for (var t = 0; t < ClipTokenizer.ContextLength; t++)
            {
                hidden.AddRange(first.AsSpan(t * w1, w1));
                hidden.AddRange(second.AsSpan(t * w2, w2));
            }

            _hiddenWidth = w1 + w2;
        }

        var states = hidden.ToArray();
        if (zero)
        {
            Array.Clear(states);
            Array.Clear(pooled!);
        }

        return (states, pooled!);
    }

    private static float[][] Run(InferenceSession encoder, int[] ids, string[] names)
    {
        var inputType = encoder.InputMetadata["input_ids"].ElementDataType;
        using var input = inputType == TensorElementType.Int64
            ? OrtValue.CreateTensorValueFromMemory(ids.Select(i => (long)i).ToArray(), [1, ids.Length])
            : OrtValue.CreateTensorValueFromMemory(ids, [1, ids.Length]);
        using var options = new RunOptions();
        using var outputs = encoder.Run(options, new Dictionary<string, OrtValue> { ["input_ids"] = input }, names);
        return [.. outputs.Select(ExecutionProviders.ReadFloats)];
    }

    /// <summary>A1111's emphasis on one encoder's output: each token's row scaled by its weight, then the mean restored.</summary>
    private static float[] Emphasize(float[] states, float[] weights)
    {
        var width = states.Length / ClipTokenizer.ContextLength;
        var before = states.Average();
        for (var t = 0; t < ClipTokenizer.ContextLength; t++)
        {
            for (var k = 0; k < width; k++)
            {
                states[(t * width) + k] *= weights[t];
            }
        }

        var after = states.Average();
        if (after != 0)
        {
            var fix = before / after;
            for (var i = 0; i < states.Length; i++)
            {
                states[i] *= fix;
            }
        }

        return states;
    }

    /// <summary>The UNet's SDXL inputs for a pass at a latent size: the pooled embeddings and the size/crop ids, a row per batch entry.</summary>
    private (OrtValue TextEmbeds, OrtValue TimeIds) XlInputs(float[] pooled, bool guided, int latentH, int latentW)
    {
        var batch = guided ? 2 : 1;
        var width = pooled.Length / 2;
        var embeds = pooled.AsSpan(guided ? 0 : width, batch * width).ToArray();
        var (h, w) = (latentH * 8f, latentW * 8f);
        // A base model: [height, width, crop top, crop left, target height, target width]; a refiner: the size, the crop
        // and an aesthetic score (the negative row's low, the positive's high).
        var ids = Enumerable.Range(0, batch).SelectMany(row => _timeIdCount == 5
            ? new[] { h, w, 0f, 0f, guided && row == 0 ? RefinerNegativeAesthetic : RefinerPositiveAesthetic }
            : new[] { h, w, 0f, 0f, h, w }).ToArray();
        return (ExecutionProviders.FloatTensor(embeds, [batch, width], _embedsType), ExecutionProviders.FloatTensor(ids, [batch, _timeIdCount], _timeIdsType));
    }
}
