namespace Atelier.Data.Entities;

/// <summary>A host name mounted on a function, with its certificate chain and its private key (sealed).</summary>
public sealed class CustomDomain : ITenantOwned
{
    public required string Host { get; set; }
    public required string TenantId { get; set; }
    public required string FunctionId { get; set; }
    public string? Qualifier { get; set; }
    public required string CertificatePem { get; set; }
    public required byte[] PrivateKeyCipher { get; set; }
    public DateTime CertificateNotAfter { get; set; }
    public DateTime CreatedAt { get; set; }
}
