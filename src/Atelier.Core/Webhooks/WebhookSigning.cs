using System.Security.Cryptography;
using System.Text;

namespace Atelier.Core.Webhooks;

/// <summary>
/// Standard Webhooks v1 signatures: <c>v1,</c> + base64 HMAC-SHA256 over <c>{id}.{timestamp}.{body}</c>, keyed by the
/// bytes of a <c>whsec_</c> secret; several signatures (one per valid secret) separated by spaces.
/// </summary>
public static class WebhookSigning
{
    public const string SecretPrefix = "whsec_";

    public static string NewSecret() => SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public static byte[] KeyOf(string secret) => Convert.FromBase64String(secret[SecretPrefix.Length..]);

    public static string Sign(string id, long timestamp, string body, IEnumerable<string> secrets) =>
        string.Join(' ', secrets.Select(s => "v1," + Convert.ToBase64String(
            HMACSHA256.HashData(KeyOf(s), Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}")))));
}
