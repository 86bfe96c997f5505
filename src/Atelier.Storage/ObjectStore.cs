using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Atelier.Storage;

/// <summary>
/// The free space of the disk Atelier writes objects to (or stages uploads on), read from the file system each time it
/// is asked: writes check it first, and readiness reports it.
/// </summary>
public sealed class StorageSpace(string folder, long minFreeBytes)
{
    public string Folder { get; } = Path.GetFullPath(folder);

    public long MinFreeBytes => minFreeBytes;

    /// <summary>The bytes free to this process on the folder's file system, or null when it cannot be read.</summary>
    public long? FreeBytes()
    {
        try
        {
            return new DriveInfo(Folder).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether the disk is under the threshold (with <paramref name="free"/> what is left).</summary>
    public bool IsLow(out long free)
    {
        free = FreeBytes() ?? long.MaxValue;
        return minFreeBytes > 0 && free < minFreeBytes;
    }

    /// <summary>Refuses a write of <paramref name="bytes"/> that would leave less than the threshold.</summary>
    public void EnsureRoom(long bytes = 0)
    {
        if (minFreeBytes > 0 && FreeBytes() is { } free && free - Math.Max(0, bytes) < minFreeBytes)
        {
            throw new StorageFullException($"{free} bytes are free on the storage disk, under the {minFreeBytes} it must keep");
        }
    }

    /// <summary>Whether a failed write failed for want of space (ENOSPC or a quota on Unix, a full disk on Windows).</summary>
    public static bool IsDiskFull(Exception e) => e switch
    {
        StorageFullException => true,
        IOException io when OperatingSystem.IsWindows() => (io.HResult & 0xFFFF) is 0x70 or 0x27,
        IOException io => io.HResult is 28 || (io.HResult is 122 && OperatingSystem.IsLinux()) || (io.HResult is 69 && OperatingSystem.IsMacOS()),
        _ => false,
    };
}

/// <summary>A write was refused or failed because the storage disk is full (or under its threshold).</summary>
public sealed class StorageFullException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>The object named by a key is not in the store (its record outlived its bytes).</summary>
public sealed class ObjectNotFoundException(string key, Exception? inner = null) : IOException($"no object '{key}' in the store", inner)
{
    public string Key { get; } = key;
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

    /// <summary>
    /// Binds <c>Atelier:Storage</c> (validated at start) and registers the configured store. Its name is read now; an
    /// unknown one registers no store, and the validation at start refuses it, listing the known ones.
    /// </summary>
    public static IServiceCollection AddAtelierStorage(this IServiceCollection services, IConfiguration configuration, string dataDirectory)
    {
        var section = configuration.GetSection(StorageOptions.SectionName);
        services.AddOptions<StorageOptions>().Bind(section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<StorageOptions>, StorageOptions.Validator>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<StorageOptions>>().Value);
        switch ((section[nameof(StorageOptions.Provider)] ?? new StorageOptions().Provider).ToLowerInvariant())
        {
            case "local":
                services.AddSingleton(sp =>
                {
                    var options = sp.GetRequiredService<StorageOptions>();
                    return new StorageSpace(options.LocalPath ?? Path.Combine(dataDirectory, "objects"), options.MinFreeBytes);
                });
                services.AddSingleton<IObjectStore>(sp =>
                    new LocalObjectStore(sp.GetRequiredService<StorageSpace>().Folder, sp.GetRequiredService<StorageSpace>(), sp.GetRequiredService<TimeProvider>()));
                break;
            case "s3":
                // Objects are elsewhere; what is written here is uploads staged on their way there.
                services.AddSingleton(sp => new StorageSpace(Path.GetTempPath(), sp.GetRequiredService<StorageOptions>().MinFreeBytes));
                services.AddSingleton<IObjectStore>(sp => new S3ObjectStore(sp.GetRequiredService<StorageOptions>(), sp.GetRequiredService<TimeProvider>()));
                break;
        }

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
