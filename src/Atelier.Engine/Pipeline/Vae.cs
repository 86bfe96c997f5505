using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Atelier.Engine.Pipeline;

/// <summary>
/// A VAE: the decoder (latents → picture) and, when there is one, the encoder (picture → latents) of a diffusers ONNX
/// folder, the model's own or one chosen by A1111's <c>sd_vae</c> (a folder with <c>vae_decoder/model.onnx</c> and
/// optionally <c>vae_encoder/model.onnx</c>, as A1111's <c>models/VAE</c> holds VAE files).
/// </summary>
internal sealed class Vae : SharedNative
{
    /// <summary>SD 1.x/2.x's latent scaling factor, used where the VAE's config does not give one (SDXL's is 0.13025).</summary>
    public const float DefaultLatentScale = 0.18215f;
    public float LatentScale { get; }
    private readonly InferenceSession _decoder;
    private readonly InferenceSession? _encoder;
    private readonly TensorElementType _decoderType;
    private readonly TensorElementType _encoderType;
    private readonly string _encoderOutput;

    /// <summary>Opens a VAE folder; <paramref name="latentScale"/> is the model's latent scaling factor (A1111 scales by the model's, whichever VAE decodes).</summary>
    public Vae(string folder, SessionOptions options, float latentScale)
    {
        LatentScale = latentScale;
        _decoder = new InferenceSession(System.IO.Path.Combine(folder, "vae_decoder", "model.onnx"), options);
        var encoderPath = System.IO.Path.Combine(folder, "vae_encoder", "model.onnx");
        try
        {
            _encoder = File.Exists(encoderPath) ? new InferenceSession(encoderPath, options) : null;
        }
        catch
        {
            _decoder.Dispose();
            throw;
        }

        _encoderOutput = _encoder?.OutputMetadata.Keys.First() ?? "latent_sample";
        _decoderType = _decoder.InputMetadata["latent_sample"].ElementDataType;
        _encoderType = _encoder?.InputMetadata["sample"].ElementDataType ?? TensorElementType.Float;
    }

    public bool CanEncode => _encoder is not null;

    /// <summary>The VAE's <c>scaling_factor</c> from its diffusers config (<c>vae_decoder/config.json</c>), else SD 1.x's.</summary>
    public static float ScalingFactor(string folder)
    {
        var config = System.IO.Path.Combine(folder, "vae_decoder", "config.json");
        if (!File.Exists(config))
        {
            return DefaultLatentScale;
        }

        try
        {
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(config));
            return json.RootElement.TryGetProperty("scaling_factor", out var f) && f.TryGetDouble(out var v) && v > 0 && v < 10 ? (float)v : DefaultLatentScale;
        }
        catch (System.Text.Json.JsonException)
        {
            return DefaultLatentScale;
        }
    }

    /// <summary>The latents, unscaled, through the decoder, to RGB bytes.</summary>
    public byte[] Decode(float[] latents, int h, int w, RunOptions runOptions)
    {
        var scaled = latents.Select(v => v / LatentScale).ToArray();
        using var input = ExecutionProviders.FloatTensor(scaled, [1, 4, h, w], _decoderType);
        using var outputs = _decoder.Run(runOptions, new Dictionary<string, OrtValue> { ["latent_sample"] = input }, ["sample"]);
        var pixels = ExecutionProviders.ReadFloats(outputs[0]);
        var width = w * 8;
        var height = h * 8;
        var plane = width * height;
        var rgb = new byte[plane * 3];
        for (var p = 0; p < plane; p++)
        {
            for (var ch = 0; ch < 3; ch++)
            {
                var v = Math.Clamp((pixels[(ch * plane) + p] / 2) + 0.5f, 0, 1);
                rgb[(p * 3) + ch] = (byte)Math.Round(v * 255);
            }
        }

        return rgb;
    }

    /// <summary>img2img: the picture resized (nearest) to the output size, to [-1, 1], through the encoder, × the latent scale.</summary>
    public float[] Encode((byte[] Rgb, int Width, int Height) image, int width, int height)
    {
        var encoder = _encoder ?? throw new EngineRequestException("this model has no vae_encoder, so img2img is not available");
        var plane = width * height;
        var pixels = new float[3 * plane];
        for (var y = 0; y < height; y++)
        {
            var sy = Math.Min(image.Height - 1, y * image.Height / height);
            for (var x = 0; x < width; x++)
            {
                var sx = Math.Min(image.Width - 1, x * image.Width / width);
                for (var ch = 0; ch < 3; ch++)
                {
                    pixels[(ch * plane) + (y * width) + x] = (image.Rgb[(((sy * image.Width) + sx) * 3) + ch] / 127.5f) - 1;
                }
            }
        }

        using var input = ExecutionProviders.FloatTensor(pixels, [1, 3, height, width], _encoderType);
        using var options = new RunOptions();
        using var outputs = encoder.Run(options, new Dictionary<string, OrtValue> { ["sample"] = input }, [_encoderOutput]);
        var latent = ExecutionProviders.ReadFloats(outputs[0]).AsSpan();
        var count = 4 * (height / 8) * (width / 8);
        // Optimum exports give 8 channels (mean, log-variance): take the mean.
        return [.. latent[..count].ToArray().Select(v => v * LatentScale)];
    }

    protected override void Free()
    {
        _decoder.Dispose();
        _encoder?.Dispose();
    }
}
