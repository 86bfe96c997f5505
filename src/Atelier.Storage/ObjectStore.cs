using Microsoft.Extensions.DependencyInjection;

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
}

/// <summary>An object store backend, chosen by <see cref="Name"/>. Keys are relative paths with '/' separators.</summary>
public interface IObjectStore
{
    string Name { get; }

    /// <summary>Stores the bytes of a local file under <paramref name="key"/> (the file is consumed: moved or deleted).</summary>
    Task PutFileAsync(string key, string localPath, CancellationToken ct);

    /// <summary>Stores a stream under <paramref name="key"/>.</summary>
    Task PutAsync(string key, Stream content, long length, CancellationToken ct);

    Task<Stream> OpenReadAsync(string key, CancellationToken ct);

    /// <summary>The object's size, or null when there is no such object.</summary>
    Task<long?> SizeAsync(string key, CancellationToken ct);

    Task CopyAsync(string fromKey, string toKey, CancellationToken ct);

    /// <summary>Deletes the object; deleting a missing object is not an error.</summary>
    Task DeleteAsync(string key, CancellationToken ct);

    /// <summary>A URL a client can PUT the bytes to directly, or null when this store takes uploads through Atelier.</summary>
    Uri? PresignPut(string key, TimeSpan lifetime);
}

public static class ObjectStores
{
    public static readonly string[] Known = ["local", "s3"];

    /// <summary>Registers the configured store; an unknown name fails at start and lists the known ones.</summary>
    public static IServiceCollection AddAtelierStorage(this IServiceCollection services, StorageOptions options, string dataDirectory)
    {
        switch (options.Provider.ToLowerInvariant())
        {
            case "local":
                var path = options.LocalPath ?? Path.Combine(dataDirectory, "objects");
                services.AddSingleton<IObjectStore>(new LocalObjectStore(path));
                break;
            case "s3":
                services.AddSingleton<IObjectStore>(new S3ObjectStore(options));
                break;
            default:
                throw new InvalidOperationException($"Unknown storage provider '{options.Provider}'. Known providers: {string.Join(", ", Known)}.");
        }

        services.AddSingleton(options);
        return services;
    }

    /// <summary>The whole object in memory (images and other small objects; never a model file).</summary>
    public static async Task<byte[]> ReadAllBytesAsync(this IObjectStore store, string key, CancellationToken ct)
    {
        await using var stream = await store.OpenReadAsync(key, ct);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, ct);
        return buffer.ToArray();
    }

    /// <summary>The key of content-addressed bytes: identical bytes are stored once.</summary>
    public static string BlobKey(string sha256Hex) => $"blobs/sha256/{sha256Hex[..2]}/{sha256Hex}";
}
