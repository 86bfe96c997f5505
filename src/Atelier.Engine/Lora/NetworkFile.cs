namespace Atelier.Engine.Lora;

/// <summary>A LoRA or textual-inversion embedding file an engine can apply: its name (the file's, without <c>.safetensors</c>) and path.</summary>
public sealed record NetworkFile(string Name, string Path)
{
    /// <summary>The <c>.safetensors</c> files in <paramref name="folder"/> (A1111's <c>models/Lora</c>, <c>embeddings</c>), by name; none when it does not exist.</summary>
    public static IReadOnlyList<NetworkFile> Scan(string folder, string pattern = "*.safetensors") => !Directory.Exists(folder) ? []
        : [.. Directory.EnumerateFiles(folder, pattern, SearchOption.TopDirectoryOnly).Order(StringComparer.Ordinal)
            .Select(f => new NetworkFile(System.IO.Path.GetFileNameWithoutExtension(f), f))];

    /// <summary>The file a name in a prompt means: the same name, then the same name in any case.</summary>
    public static string? Find(IReadOnlyList<NetworkFile> files, string name) =>
        (files.FirstOrDefault(f => f.Name == name) ?? files.FirstOrDefault(f => string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase)))?.Path;
}
