namespace Atelier.Data.Entities;

/// <summary>Who may add a blob by hash: a tenant that stored it, or everyone (<c>*</c>) for the platform's public files.</summary>
public sealed class BlobGrant
{
    public required string Sha256 { get; set; }
    public required string Owner { get; set; }
}
