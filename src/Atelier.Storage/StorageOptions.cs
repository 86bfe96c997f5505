using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Storage;

/// <summary>Configuration section <c>Atelier:Storage</c>.</summary>
public sealed partial class StorageOptions : IValidatableObject
{
    public const string SectionName = "Atelier:Storage";

    /// <summary><c>local</c> (default: a folder) or <c>s3</c> (any S3-compatible server).</summary>
    [Required]
    public string Provider { get; set; } = "local";

    /// <summary>The folder of the local store; defaults to <c>objects</c> under the server's data directory.</summary>
    public string? LocalPath { get; set; }

    /// <summary>The S3 server's address; required with the s3 provider.</summary>
    [Url]
    public string? S3ServiceUrl { get; set; }

    [Required]
    public string S3Bucket { get; set; } = "atelier";

    [Required]
    public string S3Region { get; set; } = "us-east-1";

    public string? S3AccessKey { get; set; }
    public string? S3SecretKey { get; set; }

    /// <summary>Path-style addressing (<c>http://host/bucket/key</c>), which most self-hosted S3 servers need.</summary>
    public bool S3ForcePathStyle { get; set; } = true;

    /// <summary>
    /// Free space the disk that objects (local store) or staged uploads (S3) are written to must keep: under it, writes
    /// are refused as a full disk and <c>/readyz</c> says not ready. 0 turns the check off (a write that finds the disk
    /// really full is still answered as one).
    /// </summary>
    [Range(typeof(long), "0", "9223372036854775807")]
    public long MinFreeBytes { get; set; } = 1L << 30;

    /// <summary>What a client is told to wait (<c>Retry-After</c>) when the disk is full.</summary>
    [Range(1, 86400)]
    public int FullRetryAfterSeconds { get; set; } = 60;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!ObjectStores.Known.Contains(Provider, StringComparer.OrdinalIgnoreCase))
        {
            yield return new ValidationResult($"{SectionName}:Provider: unknown provider '{Provider}'. Known providers: {string.Join(", ", ObjectStores.Known)}.");
        }
        else if (string.Equals(Provider, "s3", StringComparison.OrdinalIgnoreCase) && string.IsNullOrWhiteSpace(S3ServiceUrl))
        {
            yield return new ValidationResult($"{SectionName}:S3ServiceUrl: required with the s3 provider.");
        }
    }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<StorageOptions>;
}
