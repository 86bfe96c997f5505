namespace Atelier.Data.Entities;

/// <summary>Bytes stored once by content: their hashes and what their content says they are.</summary>
public sealed class StoredBlob
{
    public required string Sha256 { get; set; }
    public long Size { get; set; }
    /// <summary>safetensors, onnx, pickle, json, text or unknown (from the content, not the name).</summary>
    public required string Format { get; set; }
    /// <summary>checkpoint, lora, embedding, vae, controlnet, or unknown (from safetensors tensor names and metadata).</summary>
    public required string DetectedKind { get; set; }
    /// <summary>AUTOMATIC1111's AutoV2: the first 10 hex digits of the SHA-256 of the whole file.</summary>
    public required string AutoV2 { get; set; }
    /// <summary>AutoV3 (the LoRA short hash): 12 hex digits of the SHA-256 of a safetensors file's data after its header.</summary>
    public string? AutoV3 { get; set; }
    public string? MetadataJson { get; set; }
    public DateTime CreatedAt { get; set; }
}
