namespace Atelier.Storage;

/// <summary>
/// Objects as files under one folder. Writes go to a temporary name first, then move into place; a write that fails
/// removes its temporary file, and those a stopped process left behind are swept at start. A write is refused when the
/// disk is under its threshold, and one that runs out of space is a <see cref="StorageFullException"/>.
/// </summary>
public sealed class LocalObjectStore : IObjectStore
{
    /// <summary>A temporary file not written to for this long at start belongs to no live write (any write touches its file as it goes).</summary>
    public static readonly TimeSpan AbandonedAfter = TimeSpan.FromMinutes(10);

    private readonly string _root;
    private readonly StorageSpace _space;
    private readonly TimeProvider _clock;

    public LocalObjectStore(string root, StorageSpace? space = null, TimeProvider? clock = null)
    {
        _root = Path.GetFullPath(root);
        _space = space ?? new StorageSpace(_root, 0);
        _clock = clock ?? TimeProvider.System;
        Directory.CreateDirectory(_root);
        SweepTemp();
    }

    /// <summary>Deletes temporary files left by writes that never finished (a crash, a kill, a full disk).</summary>
    private void SweepTemp()
    {
        var temp = Path.Combine(_root, ".tmp");
        if (!Directory.Exists(temp))
        {
            return;
        }

        var cutoff = _clock.GetUtcNow().UtcDateTime - AbandonedAfter;
        foreach (var file in new DirectoryInfo(temp).EnumerateFiles())
        {
            try
            {
                if (file.LastWriteTimeUtc < cutoff)
                {
                    file.Delete();
                }
            }
            catch (IOException)
            {
                // Gone already, or busy: the next start tries again.
            }
        }
    }

    public string Name => "local";

    /// <summary>The folder for temporary files on the same file system, so that finishing is a rename.</summary>
    public string TempDirectory => Directory.CreateDirectory(Path.Combine(_root, ".tmp")).FullName;

    public Task PutFileAsync(string key, string localPath, CancellationToken ct)
    {
        var target = PathOf(key);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Move(localPath, target, overwrite: true);
        }
        catch (IOException e) when (StorageSpace.IsDiskFull(e) && e is not StorageFullException)
        {
            throw new StorageFullException("the storage disk is full", e);
        }

        return Task.CompletedTask;
    }

    public async Task PutAsync(string key, Stream content, long length, CancellationToken ct)
    {
        ObjectKeys.Check(key); // before anything is written
        _space.EnsureRoom(length);
        string? temp = null;
        try
        {
            temp = Path.Combine(TempDirectory, Guid.NewGuid().ToString("N"));
            // Unbuffered, copied in pieces of at most 1 MiB and no larger than the object: a FileStream's own buffer is
            // a new array per stream, and at 1 MiB each small image (the sync txt2img path writes one per job) cost a
            // large-object allocation.
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, useAsync: true))
            {
                await content.CopyToAsync(file, (int)Math.Clamp(length, 4096, 1 << 20), ct);
            }

            await PutFileAsync(key, temp, ct);
        }
        catch (Exception e)
        {
            if (temp is not null)
            {
                File.Delete(temp);
            }

            if (e is IOException io && StorageSpace.IsDiskFull(io) && e is not StorageFullException)
            {
                throw new StorageFullException("the storage disk is full", e);
            }

            throw;
        }
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken ct)
    {
        try
        {
            return Task.FromResult<Stream>(new FileStream(PathOf(key), FileMode.Open, FileAccess.Read, FileShare.Read, 4096, useAsync: true));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ObjectNotFoundException(key, e);
        }
    }

    public Task<long?> SizeAsync(string key, CancellationToken ct)
    {
        var info = new FileInfo(PathOf(key));
        return Task.FromResult(info.Exists ? info.Length : (long?)null);
    }

    public Task CopyAsync(string fromKey, string toKey, CancellationToken ct)
    {
        var source = PathOf(fromKey);
        var target = PathOf(toKey);
        _space.EnsureRoom(new FileInfo(source) is { Exists: true } info ? info.Length : 0);
        // Through a temporary file too, so that a copy cut short by a full disk leaves no partial object.
        string? temp = null;
        try
        {
            temp = Path.Combine(TempDirectory, Guid.NewGuid().ToString("N"));
            File.Copy(source, temp);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Move(temp, target, overwrite: true);
        }
        catch (Exception e)
        {
            if (temp is not null)
            {
                File.Delete(temp);
            }

            throw e switch
            {
                FileNotFoundException or DirectoryNotFoundException when !File.Exists(source) => new ObjectNotFoundException(fromKey, e),
                IOException io when StorageSpace.IsDiskFull(io) => new StorageFullException("the storage disk is full", e),
                _ => e,
            };
        }

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
