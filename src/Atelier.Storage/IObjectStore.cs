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

    /// <summary>
    /// For an object of <paramref name="length"/> bytes too large for one PUT of this store: a multipart upload begun
    /// under <paramref name="key"/>, with a presigned URL for each part, which the client PUTs and then names, with the
    /// ETag each PUT answered, in <see cref="CompletePartsAsync"/>. Null when one PUT (or Atelier itself) takes the bytes.
    /// </summary>
    Task<PresignedParts?> PresignPartsAsync(string key, long length, TimeSpan lifetime, CancellationToken ct) => Task.FromResult<PresignedParts?>(null);

    /// <summary>Joins the parts of a multipart upload from <see cref="PresignPartsAsync"/> into the object.</summary>
    Task CompletePartsAsync(string key, string uploadId, IReadOnlyList<UploadedPart> parts, CancellationToken ct) =>
        throw new NotSupportedException($"The {Name} store takes no multipart uploads.");

    /// <summary>Ends a multipart upload and drops its parts; ending one that is not there succeeds.</summary>
    Task AbortPartsAsync(string key, string uploadId, CancellationToken ct) => Task.CompletedTask;
}

/// <summary>A multipart upload a client sends directly: part <c>n</c> (from 1) is <see cref="PartSize"/> bytes (the last one the rest), PUT to <c>Urls[n - 1]</c>.</summary>
public sealed record PresignedParts(string UploadId, long PartSize, IReadOnlyList<Uri> Urls);

/// <summary>One part a client sent: its number (from 1) and the ETag its PUT answered.</summary>
public sealed record UploadedPart(int Number, string ETag);
