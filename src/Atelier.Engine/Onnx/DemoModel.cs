using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Onnx;

/// <summary>The demo model: a tiny pipeline written on the spot (no download), so that a bare machine can make an image.</summary>
public static class DemoModel
{
    /// <summary>The demo model's folder name inside a models folder.</summary>
    public const string FolderName = "atelier-demo";

    /// <summary>Writes the demo model into <paramref name="modelsDirectory"/> unless that folder already holds a model; returns its folder.</summary>
    public static string Ensure(string modelsDirectory)
    {
        var demo = Path.Combine(modelsDirectory, FolderName);
        if (ModelEntry.Scan(modelsDirectory).Count == 0)
        {
            TinyPipeline.Write(demo, new TinyPipelineOptions(A: 0.6f, B: 0.4f));
        }

        return demo;
    }
}
