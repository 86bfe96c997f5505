namespace Atelier.Engine.Lora;

/// <summary>A LoRA file an engine can apply: its name (the file's, without <c>.safetensors</c>) and path.</summary>
public sealed record LoraFile(string Name, string Path)
{
    /// <summary>The LoRA files in <paramref name="folder"/> (A1111's <c>models/Lora</c>), by name; none when it does not exist.</summary>
    public static IReadOnlyList<LoraFile> Scan(string folder) => !Directory.Exists(folder) ? []
        : [.. Directory.EnumerateFiles(folder, "*.safetensors", SearchOption.TopDirectoryOnly).Order(StringComparer.Ordinal)
            .Select(f => new LoraFile(System.IO.Path.GetFileNameWithoutExtension(f), f))];

    /// <summary>The file a prompt's <c>&lt;lora:name&gt;</c> means: the same name, then the same name in any case.</summary>
    public static string? Find(IReadOnlyList<LoraFile> files, string name) =>
        (files.FirstOrDefault(f => f.Name == name) ?? files.FirstOrDefault(f => string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase)))?.Path;
}
