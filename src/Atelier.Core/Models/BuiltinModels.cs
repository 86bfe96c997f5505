using System.Collections.Concurrent;

namespace Atelier.Core.Models;

/// <summary>A model file the server ships itself (the demo pipeline's UNet), stored as a public blob at start.</summary>
public sealed record BuiltinModelFile(string Name, string FileName, string Sha256, long Size, string Format);

/// <summary>
/// The built-in models this server has stored. A tenant default model marked <c>"builtin": true</c> gets a "default"
/// version whose primary file is the built-in file of the same name, stored already (no download).
/// </summary>
public sealed class BuiltinModels
{
    private readonly ConcurrentDictionary<string, BuiltinModelFile> _files = new();

    public void Add(BuiltinModelFile file) => _files[file.Name] = file;

    public BuiltinModelFile? Find(string name) => _files.TryGetValue(name, out var f) ? f : null;
}
