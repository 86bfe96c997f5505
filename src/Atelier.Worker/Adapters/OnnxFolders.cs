using Atelier.Contracts.Workers;

namespace Atelier.Worker.Adapters;

/// <summary>
/// A model version's files as a diffusers ONNX folder, the layout the built-in engine loads: its root is the folder of
/// its <c>model_index.json</c> (a version's files may sit under a folder of their own, such as <c>v2/unet/model.onnx</c>,
/// since file names are unique per model across its versions).
/// </summary>
public static class OnnxFolders
{
    /// <summary>The files the engine's loader reads, relative to the root.</summary>
    public static readonly string[] Required =
        ["model_index.json", "unet/model.onnx", "text_encoder/model.onnx", "vae_decoder/model.onnx", "tokenizer/vocab.json", "tokenizer/merges.txt"];

    /// <summary>The root ("" or "folder/") of the version's ONNX folder, or null with what is missing.</summary>
    public static (string? Root, string? Problem) RootOf(LeasedModel model)
    {
        var files = model.Files ?? [];
        var roots = files.Select(f => f.Path).Where(p => p == "model_index.json" || p.EndsWith("/model_index.json", StringComparison.Ordinal))
            .Select(p => p[..^"model_index.json".Length]).ToList();
        if (roots.Count == 0)
        {
            return (null, "it has no model_index.json");
        }

        var primary = files.FirstOrDefault(f => f.Primary)?.Path;
        var root = roots.Count == 1 ? roots[0]
            : roots.Where(r => primary is not null && primary.StartsWith(r, StringComparison.Ordinal)).MaxBy(r => r.Length);
        if (root is null)
        {
            return (null, $"it has {roots.Count} model_index.json files and its primary file is in none of their folders");
        }

        var missing = Required.Where(r => files.All(f => f.Path != root + r)).ToList();
        return missing.Count == 0 ? (root, null) : (null, $"it lacks {string.Join(", ", missing.Select(m => root + m))}");
    }

    /// <summary>The UNet's SHA-256 (what the engine knows a model by).</summary>
    public static string UnetSha256(LeasedModel model, string root) => model.Files!.First(f => f.Path == root + "unet/model.onnx").Sha256;
}
