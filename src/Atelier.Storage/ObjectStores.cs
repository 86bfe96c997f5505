using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Atelier.Storage;

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
