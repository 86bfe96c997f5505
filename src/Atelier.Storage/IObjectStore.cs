namespace Atelier.Storage;

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
