namespace Atelier.Engine.Lora;

/// <summary>A LoRA or textual-inversion embedding file an engine can apply: its name (the file's, without <c>.safetensors</c>) and path.</summary>
public sealed record NetworkFile(string Name, string Path)
{
    /// <summary>The <c>.safetensors</c> files in <paramref name="folder"/> (A1111's <c>models/Lora</c>, <c>embeddings</c>), by name; none when it does not exist.</summary>
    public static IReadOnlyList<NetworkFile> Scan(string folder, string pattern = "*.safetensors") => !Directory.Exists(folder) ? []
        : [.. Directory.EnumerateFiles(folder, pattern, SearchOption.TopDirectoryOnly).Order(StringComparer.Ordinal)
            .Select(f => new NetworkFile(System.IO.Path.GetFileNameWithoutExtension(f), f))];

    /// <summary>The VAE folders in <paramref name="folder"/> (A1111's <c>models/VAE</c>): each subfolder with a <c>vae_decoder/model.onnx</c>, by its name.</summary>
    public static IReadOnlyList<NetworkFile> ScanVaes(string folder) => !Directory.Exists(folder) ? []
        : [.. Directory.GetDirectories(folder).Order(StringComparer.Ordinal)
            .Where(d => File.Exists(System.IO.Path.Combine(d, "vae_decoder", "model.onnx")))
            .Select(d => new NetworkFile(System.IO.Path.GetFileName(d), d))];

    /// <summary>
    /// The VAE A1111's <c>sd_vae</c> names: null for <c>Automatic</c>, <c>None</c> or empty (the model's own); else the
    /// folder of that name (an A1111 file name's extension is ignored), and <paramref name="missing"/> when there is none.
    /// </summary>
    public static NetworkFile? FindVae(IReadOnlyList<NetworkFile> vaes, string? setting, out bool missing)
    {
        missing = false;
        if (string.IsNullOrWhiteSpace(setting) || setting is "Automatic" or "None")
        {
            return null;
        }

        var name = System.IO.Path.GetFileNameWithoutExtension(setting.Trim());
        var found = vaes.FirstOrDefault(v => v.Name == name) ?? vaes.FirstOrDefault(v => string.Equals(v.Name, name, StringComparison.OrdinalIgnoreCase))
                    ?? vaes.FirstOrDefault(v => string.Equals(v.Name, setting.Trim(), StringComparison.OrdinalIgnoreCase));
        missing = found is null;
        return found;
    }

    /// <summary>The file a name in a prompt means: the same name, then the same name in any case.</summary>
    public static string? Find(IReadOnlyList<NetworkFile> files, string name) =>
        (files.FirstOrDefault(f => f.Name == name) ?? files.FirstOrDefault(f => string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase)))?.Path;
}
