namespace Atelier.Data.Entities;

/// <summary>An upload a client asked for: the bytes go to the returned URL, then become a stored blob.</summary>
public sealed class Upload : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Type { get; set; }
    public required string FileName { get; set; }
    public long DeclaredSize { get; set; }
    public string? DeclaredSha256 { get; set; }
    public required byte[] SecretHash { get; set; }
    /// <summary>pending, stored or failed.</summary>
    public required string State { get; set; }
    public string? Sha256 { get; set; }
    public string? Error { get; set; }
    /// <summary>The object store's multipart upload the client sends the parts of (past the store's one-PUT limit); null once joined, or for one PUT.</summary>
    public string? PartsUploadId { get; set; }
    /// <summary>The size of each part but the last, for an upload in parts.</summary>
    public long PartBytes { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime ExpiresAt { get; set; }
}
