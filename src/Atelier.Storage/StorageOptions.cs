namespace Atelier.Storage;

/// <summary>Configuration section <c>Atelier:Storage</c>.</summary>
public sealed class StorageOptions
{
    public const string Section = "Atelier:Storage";

    /// <summary><c>local</c> (default: a folder) or <c>s3</c> (any S3-compatible server).</summary>
    public string Provider { get; set; } = "local";

    /// <summary>The folder of the local store; defaults to <c>objects</c> under the server's data directory.</summary>
    public string? LocalPath { get; set; }

    public string? S3ServiceUrl { get; set; }
    public string S3Bucket { get; set; } = "atelier";
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
    public long MinFreeBytes { get; set; } = 1L << 30;

    /// <summary>What a client is told to wait (<c>Retry-After</c>) when the disk is full.</summary>
    public int FullRetryAfterSeconds { get; set; } = 60;
}
