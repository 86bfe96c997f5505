using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Onnx;

/// <summary>
/// The demo model: written on the spot (no download), so that a bare machine can make an image. The demo itself is
/// <see cref="DemoPainter"/> (synthetic, but its pictures follow the prompt); other names give tiny test pipelines.
/// </summary>
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
            DemoPainter.Write(demo);
        }

        return demo;
    }

    /// <summary>
    /// Writes a tiny model named <paramref name="name"/> into <paramref name="modelsDirectory"/> (unless that folder holds a
    /// model already) and returns its folder. Its UNet's weights come from the name, so another name is another model
    /// (other bytes, another hash); the demo model's own name gives the demo model.
    /// </summary>
    public static string Write(string modelsDirectory, string name)
    {
        if (name == FolderName)
        {
            return Ensure(modelsDirectory);
        }

        var folder = Path.Combine(modelsDirectory, name);
        if (!File.Exists(Path.Combine(folder, "model_index.json")))
        {
            var h = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name));
            TinyPipeline.Write(folder, new TinyPipelineOptions(A: 0.5f + (h[0] / 640f), B: 0.3f + (h[1] / 640f)));
        }

        return folder;
    }
}
