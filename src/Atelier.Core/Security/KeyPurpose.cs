namespace Atelier.Core.Security;

/// <summary>What a derived key protects; each purpose has its own key, so one can never be used for another.</summary>
public enum KeyPurpose
{
    /// <summary>AES-GCM over the apps' webhook signing secrets in the database.</summary>
    WebhookSecrets,
    /// <summary>HMAC-SHA256 over signed image URLs.</summary>
    ImageUrls,
    /// <summary>AES-GCM over the kube configs of regions and the private keys of custom domains in the database.</summary>
    RuntimeSecrets,
}
