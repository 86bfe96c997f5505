namespace Atelier.Data.Entities;

/// <summary>A file of a model version: bytes in the object store (by SHA-256), or on their way there.</summary>
public sealed class ModelFile : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string ModelId { get; set; }
    public required string VersionId { get; set; }
    public required string AliasName { get; set; }
    public bool IsPrimary { get; set; }
    /// <summary>upload, url or hash.</summary>
    public required string Source { get; set; }
    /// <summary>stored, queued, downloading or failed.</summary>
    public required string State { get; set; }
    public string? Sha256 { get; set; }
    public long? Size { get; set; }
    public string? Format { get; set; }
    public string? SourceUrl { get; set; }
    public long DownloadedBytes { get; set; }
    public long? TotalBytes { get; set; }
    public long BytesPerSecond { get; set; }
    public int Attempts { get; set; }
    public string? ErrorCode { get; set; }
    public string? ErrorMessage { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
