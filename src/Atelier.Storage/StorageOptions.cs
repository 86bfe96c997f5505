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

    /// <summary>With <see cref="S3SecretKey"/>; both unset, the AWS SDK's credential chain is used (environment, profile, web identity, instance role).</summary>
    public string? S3AccessKey { get; set; }

    public string? S3SecretKey { get; set; }

    /// <summary>Objects larger than this are written (and copied) in parts; S3 takes at most 5 GiB in one PUT or copy.</summary>
    [Range(typeof(long), "1", "5368709120")]
    public long S3MultipartThresholdBytes { get; set; } = MaxSinglePartBytes;

    /// <summary>The size of one part of a multipart write or copy (S3: at least 5 MiB, at most 5 GiB, at most 10,000 parts).</summary>
    [Range(typeof(long), "5242880", "5368709120")]
    public long S3MultipartPartBytes { get; set; } = 64L << 20;

    /// <summary>S3's limit on one PUT and one copy: 5 GiB.</summary>
    public const long MaxSinglePartBytes = 5L << 30;

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

        if (string.IsNullOrEmpty(S3AccessKey) != string.IsNullOrEmpty(S3SecretKey))
        {
            yield return new ValidationResult($"{SectionName}:S3AccessKey and {SectionName}:S3SecretKey: set both, or neither (then the AWS credential chain is used).");
        }
    }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<StorageOptions>;
}
