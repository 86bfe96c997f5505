namespace Atelier.Data.Entities;

/// <summary>
/// An app's webhook settings: its default URL and events (used by jobs that name none) and its signing secret, stored
/// encrypted. During a rotation the previous secret stays valid (and is signed with too) until <see cref="PreviousValidUntil"/>.
/// </summary>
public sealed class AppWebhook : ITenantOwned
{
    public required string AppId { get; set; }
    public required string TenantId { get; set; }
    public string? Url { get; set; }
    public string? Events { get; set; }
    public required byte[] SecretCipher { get; set; }
    public byte[]? PreviousSecretCipher { get; set; }
    public DateTime? PreviousValidUntil { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
