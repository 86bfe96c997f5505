namespace Atelier.Engine.Lora;

/// <summary>
/// A textual-inversion embedding (A1111's <c>embeddings</c>): vectors that stand in the text encoder's token embeddings
/// wherever the prompt says its name. Read from a safetensors file: A1111's <c>emb_params</c>, else
/// <c>string_to_param.*</c>, else the file's only tensor; [vectors, width], or [width] for one vector.
/// </summary>
public sealed class Embedding
{
    private Embedding(string name, string path, float[] vectors, int count, int width)
    {
        Name = name;
        Path = path;
        Vectors = vectors;
        Count = count;
        Width = width;
    }

    public string Name { get; }
    public string Path { get; }
    /// <summary>The vectors, row by row (<see cref="Count"/> rows of <see cref="Width"/>).</summary>
    public float[] Vectors { get; }
    public int Count { get; }
    public int Width { get; }

    /// <summary>The most vectors one embedding may have (A1111's are a handful; a chunk holds 75 tokens).</summary>
    public const int MaxVectors = 75;

    public static Embedding Load(NetworkFile file)
    {
        var tensors = SafeTensors.Open(file.Path);
        var tensor = tensors.Tensors.TryGetValue("emb_params", out var a1111) ? a1111
            : tensors.Tensors.Values.FirstOrDefault(t => t.Name.StartsWith("string_to_param", StringComparison.Ordinal))
              ?? (tensors.Tensors.Count == 1 ? tensors.Tensors.Values.First()
                  : throw new InvalidDataException($"embedding {file.Name}: no emb_params tensor (SDXL embeddings, clip_l/clip_g, are not supported)"));
        var (count, width) = tensor.Shape switch
        {
            [var w] => (1, (int)w),
            [var n, var w] => ((int)n, (int)w),
            _ => throw new InvalidDataException($"embedding {file.Name}: a tensor of shape [{string.Join(", ", tensor.Shape)}], not [vectors, width]"),
        };
        if (count is < 1 or > MaxVectors || width < 1)
        {
            throw new InvalidDataException($"embedding {file.Name}: {count} vectors of {width}; 1 to {MaxVectors} vectors are supported");
        }

        return new Embedding(file.Name, file.Path, tensors.ReadFloats(tensor), count, width);
    }

    /// <summary>Writes an A1111-style embedding (<c>emb_params</c>, [vectors, width]) — how tests and tools make one.</summary>
    public static void Write(string path, float[] vectors, int width) =>
        SafeTensors.Write(path, [("emb_params", [vectors.Length / width, width], vectors)], new Dictionary<string, string> { ["format"] = "atelier" });
}

/// <summary>An embedding a prompt uses, as the tokenizer sees it: the token ids of its name and the ids its vectors take (past the vocabulary).</summary>
public sealed record EmbeddingTokens(IReadOnlyList<int> NameIds, int FirstId, int Count);
