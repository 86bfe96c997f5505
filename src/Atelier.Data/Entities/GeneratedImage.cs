namespace Atelier.Data.Entities;

/// <summary>An image a job produced: the generated-images library.</summary>
public sealed class GeneratedImage : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string JobId { get; set; }
    public int Index { get; set; }
    public string? AppId { get; set; }
    /// <summary>The session that asked for it, when an end user did.</summary>
    public string? SessionId { get; set; }
    public string? ModelVersionId { get; set; }
    public long Seed { get; set; }
    public string Infotext { get; set; } = "";
    public int Width { get; set; }
    public int Height { get; set; }
    public long Size { get; set; }
    public required string Sha256 { get; set; }
    public required string StorageKey { get; set; }
    public DateTime CreatedAt { get; set; }
    /// <summary>Set when deleting its stored bytes failed: the record stays so nothing is orphaned.</summary>
    public string? DeleteError { get; set; }
}
