namespace Atelier.Storage;

/// <summary>Objects as files under one folder. Writes go to a temporary name first, then move into place.</summary>
public sealed class LocalObjectStore : IObjectStore
{
    private readonly string _root;

    public LocalObjectStore(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
    }

    public string Name => "local";

    /// <summary>The folder for temporary files on the same file system, so that finishing is a rename.</summary>
    public string TempDirectory => Directory.CreateDirectory(Path.Combine(_root, ".tmp")).FullName;

    public Task PutFileAsync(string key, string localPath, CancellationToken ct)
    {
        var target = PathOf(key);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Move(localPath, target, overwrite: true);
        return Task.CompletedTask;
    }

    public async Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        ObjectKeys.Check(key); // before anything is written
        var temp = Path.Combine(TempDirectory, Guid.NewGuid().ToString("N"));
        await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, useAsync: true))
        {
            await content.CopyToAsync(file, 1 << 20, ct);
        }

        await PutFileAsync(key, temp, ct);
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken ct) =>
        Task.FromResult<Stream>(new FileStream(PathOf(key), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, useAsync: true));

    public Task<long?> SizeAsync(string key, CancellationToken ct)
    {
        var info = new FileInfo(PathOf(key));
        return Task.FromResult(info.Exists ? info.Length : (long?)null);
    }

    public Task CopyAsync(string fromKey, string toKey, CancellationToken ct)
    {
        var target = PathOf(toKey);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Copy(PathOf(fromKey), target, overwrite: true);
        return Task.CompletedTask;
    }

    public Task DeleteAsync(string key, CancellationToken ct)
    {
        File.Delete(PathOf(key));
        return Task.CompletedTask;
    }

    public Uri? PresignPut(string key, TimeSpan lifetime) => null;

    /// <summary>Maps a key into the root: a malformed key is refused (<see cref="ObjectKeys"/>), and so is one that would still climb out.</summary>
    private string PathOf(string key)
    {
        var full = Path.GetFullPath(Path.Combine(_root, ObjectKeys.Check(key)));
        if (!full.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new ArgumentException($"Object key '{key}' leaves the store.", nameof(key));
        }

        return full;
    }
}
