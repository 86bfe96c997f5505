using Atelier.Engine.Lora;
using Atelier.Engine.Pipeline;
using Microsoft.ML.OnnxRuntime;

namespace Atelier.Engine.Images;

/// <summary>
/// An upscaler model exported to ONNX (Real-ESRGAN, ESRGAN, SwinIR, …: one RGB picture [1, 3, H, W] in 0..1 in, the same
/// picture s times larger out), run as A1111 runs its model upscalers: in tiles of 192 pixels with 8 pixels of context
/// around each (the context is cut off the result, so tiles meet without seams), applied again while the picture is
/// smaller than the target (at most three times), then brought to the exact size with Lanczos.
/// </summary>
public sealed class OnnxUpscaler : IDisposable
{
    public const int Tile = 192, Overlap = 8, MaxPasses = 3;

    private readonly InferenceSession _session;
    private readonly string _input;
    private readonly string _output;
    private readonly Microsoft.ML.OnnxRuntime.Tensors.TensorElementType _type;

    private OnnxUpscaler(InferenceSession session)
    {
        _session = session;
        _input = session.InputMetadata.Keys.First();
        _output = session.OutputMetadata.Keys.First();
        _type = session.InputMetadata[_input].ElementDataType;
    }

    /// <summary>The ONNX upscaler files in <paramref name="folder"/> (A1111's <c>models/ESRGAN</c>): a file's name is the upscaler's.</summary>
    public static IReadOnlyList<NetworkFile> Scan(string folder) => NetworkFile.Scan(folder, "*.onnx");

    public static OnnxUpscaler Open(string path, DeviceSettings? device = null)
    {
        using var options = ExecutionProviders.SessionOptionsFor(device ?? DeviceSettings.Default);
        var session = new InferenceSession(path, options);
        var input = session.InputMetadata.Values.First();
        if (session.InputMetadata.Count != 1 || input.Dimensions.Length != 4 || (input.Dimensions[1] is not (3 or -1)))
        {
            session.Dispose();
            throw new InvalidDataException($"{Path.GetFileName(path)} is not an upscaler: it should take one [1, 3, H, W] picture");
        }

        return new OnnxUpscaler(session);
    }

    /// <summary>The picture brought to <paramref name="tw"/>×<paramref name="th"/>: the model until it is at least that large, then Lanczos.</summary>
    public byte[] Resize(byte[] rgb, int w, int h, int tw, int th)
    {
        for (var pass = 0; pass < MaxPasses && (w < tw || h < th); pass++)
        {
            (rgb, w, h) = Upscale(rgb, w, h);
        }

        return w == tw && h == th ? rgb : Upscaling.Resize(rgb, w, h, tw, th, "Lanczos");
    }

    /// <summary>One pass of the model over the picture, tile by tile.</summary>
    public (byte[] Rgb, int Width, int Height) Upscale(byte[] rgb, int w, int h)
    {
        byte[]? result = null;
        var scale = 0;
        for (var ty = 0; ty < h; ty += Tile)
        {
            for (var tx = 0; tx < w; tx += Tile)
            {
                // The tile with its context, clamped to the picture.
                var (x0, y0) = (Math.Max(0, tx - Overlap), Math.Max(0, ty - Overlap));
                var (x1, y1) = (Math.Min(w, tx + Tile + Overlap), Math.Min(h, ty + Tile + Overlap));
                var (cw, ch) = (x1 - x0, y1 - y0);
                var input = new float[3 * cw * ch];
                for (var y = 0; y < ch; y++)
                {
                    for (var x = 0; x < cw; x++)
                    {
                        var from = ((((y0 + y) * w) + x0 + x) * 3);
                        for (var c = 0; c < 3; c++)
                        {
                            input[(c * cw * ch) + (y * cw) + x] = rgb[from + c] / 255f;
                        }
                    }
                }

                using var value = ExecutionProviders.FloatTensor(input, [1, 3, ch, cw], _type);
                using var run = new RunOptions();
                using var outputs = _session.Run(run, [_input], [value], [_output]);
                var shape = outputs[0].GetTensorTypeAndShape().Shape;
                var (ow, oh) = ((int)shape[3], (int)shape[2]);
                if (scale == 0)
                {
                    scale = ow / cw;
                    if (scale < 1 || ow != cw * scale || oh != ch * scale || (long)w * scale * h * scale > Upscaling.MaxOutputPixels * 4)
                    {
                        throw new InvalidDataException($"the upscaler answered {ow}×{oh} for {cw}×{ch}: not a whole scale, or too large a picture");
                    }

                    result = new byte[w * scale * h * scale * 3];
                }

                var pixels = ExecutionProviders.ReadFloats(outputs[0]);
                // Only the tile itself goes into the result; its context is cut off.
                var (ix, iy) = ((tx - x0) * scale, (ty - y0) * scale);
                var (tw, th) = (Math.Min(Tile, w - tx) * scale, Math.Min(Tile, h - ty) * scale);
                var outW = w * scale;
                for (var y = 0; y < th; y++)
                {
                    for (var x = 0; x < tw; x++)
                    {
                        var to = ((((ty * scale) + y) * outW) + (tx * scale) + x) * 3;
                        for (var c = 0; c < 3; c++)
                        {
                            result![to + c] = (byte)Math.Clamp(Math.Round(pixels[(c * ow * oh) + ((iy + y) * ow) + ix + x] * 255), 0, 255);
                        }
                    }
                }
            }
        }

        return (result!, w * scale, h * scale);
    }

    public void Dispose() => _session.Dispose();
}
