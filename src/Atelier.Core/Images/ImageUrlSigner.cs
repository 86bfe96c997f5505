using System.Security.Cryptography;
using System.Text;
using Atelier.Core.Security;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Images;

/// <summary>
/// Signs image URLs: <c>HMAC-SHA256(key, id + "\n" + expiry)</c> with the image-URL key of the master key
/// (<see cref="MasterKeys"/>, never in the database); the URL names the key's id, so URLs signed before a rotation verify
/// while the previous key is in its grace period. Verified in constant time; an expiry further away than the configured
/// lifetime is refused whoever signed it.
/// </summary>
public sealed class ImageUrlSigner(MasterKeys keys, TimeProvider clock, IOptions<ImagesOptions> options)
{
    /// <summary>The query of a signed URL for <paramref name="imageId"/>, and its expiry.</summary>
    public (string Query, long Expires) Sign(string imageId)
    {
        var expires = clock.GetUtcNow().AddSeconds(options.Value.UrlLifetimeSeconds).ToUnixTimeSeconds();
        var sig = Convert.ToHexStringLower(Mac(keys.Current(KeyPurpose.ImageUrls), imageId, expires));
        return ($"expires={expires}&kid={keys.CurrentId}&sig={sig}", expires);
    }

    public bool Verify(string imageId, long expires, string? keyId, string? signature)
    {
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        if (expires < now || expires - now > options.Value.UrlLifetimeSeconds
            || signature is null || signature.Length != 64 || !signature.All(Uri.IsHexDigit)
            || keyId is null || keys.ById(keyId, KeyPurpose.ImageUrls) is not { } key)
        {
            return false;
        }

        return CryptographicOperations.FixedTimeEquals(Mac(key, imageId, expires), Convert.FromHexString(signature));
    }

    private static byte[] Mac(byte[] key, string imageId, long expires) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{imageId}\n{expires}"));
}
