namespace Atelier.Data.Entities;

/// <summary>A model of a tenant's library (checkpoint, LoRA, embedding, VAE, ControlNet, upscaler, ONNX pipeline).</summary>
public sealed class Model : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public required string Type { get; set; }
    public string? Description { get; set; }
    public string? SourceUrl { get; set; }
    /// <summary>Tag names, '\n'-separated, each from the tag dictionary.</summary>
    public string Tags { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
