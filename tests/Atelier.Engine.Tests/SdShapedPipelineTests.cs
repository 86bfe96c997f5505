using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Tests;

/// <summary>
/// The generator of SD 1.5-shaped models that the GPU device check measures with: here at a small width, where the CPU
/// runs it, its three graphs load in ONNX Runtime and go through the whole pipeline; fp16 at full width is the device's.
/// </summary>
public sealed class SdShapedPipelineTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-sd-shaped-").FullName;

    private static readonly SdShapedOptions Small = new(BaseChannels: 32, ContextWidth: 64, TextLayers: 2, VocabSize: 600, VaeChannels: 32, Fp16: false);

    [Fact]
    public void SmallWidth_LoadsAndRunsThroughThePipeline()
    {
        var folder = Path.Combine(_root, "small");
        SdShapedPipeline.Write(folder, Small);
        using var pipeline = DiffusionPipeline.Load(folder, "sd-shaped", "6666666666");
        Assert.Equal("fp32", pipeline.Precision);

        var result = pipeline.Generate(new GenerationRequest { Prompt = "a red fox", Steps = 2, Width = 64, Height = 64, Seed = 3, Sampler = "Euler", CfgScale = 7 },
            null, CancellationToken.None);

        var image = PngDecoder.Decode(result.Images[0].Png);
        Assert.Equal((64, 64), (image.Width, image.Height));
        Assert.True(image.Rgb.Distinct().Count() > 16, "random weights give noise, not a flat picture");
    }

    [Fact]
    public void Fp16_DeclaresHalfTensorsAtTheInterfaces_AndAnFp32Timestep()
    {
        var folder = Path.Combine(_root, "half");
        SdShapedPipeline.Write(folder, Small with { Fp16 = true });
        using var unet = new Microsoft.ML.OnnxRuntime.InferenceSession(Path.Combine(folder, "unet", "model.onnx"),
            new Microsoft.ML.OnnxRuntime.SessionOptions { GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_DISABLE_ALL });
        Assert.Equal(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16, unet.InputMetadata["sample"].ElementDataType);
        Assert.Equal(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16, unet.InputMetadata["encoder_hidden_states"].ElementDataType);
        Assert.Equal(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, unet.InputMetadata["timestep"].ElementDataType);
        Assert.Equal(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16, unet.OutputMetadata["out_sample"].ElementDataType);
    }

    [Fact]
    public void Widths_ThatGroupNormsCannotSplit_AreRefused() =>
        Assert.Throws<ArgumentException>(() => SdShapedPipeline.Write(Path.Combine(_root, "odd"), Small with { BaseChannels = 40 }));

    public void Dispose()
    {
        Directory.Delete(_root, recursive: true);
        GC.SuppressFinalize(this);
    }
}
