using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Atelier.Worker.Delivery;

/// <summary>One file a model needs: where it goes in the model's folder (a relative path with '/'), its SHA-256 and size.</summary>
public sealed record CacheFile(string Path, string Sha256, long Size);

/// <summary>How far a model's fetch is: bytes in the cache of the bytes the model needs.</summary>
public sealed record CacheProgress(long BytesDone, long BytesTotal);

/// <summary>
/// Asks for a file's bytes from <paramref name="offset"/> (a Range request when it is above zero). The answer is 206
/// (the bytes from the offset) or 200 (the whole file); anything else is thrown by the delegate.
/// </summary>
public delegate Task<HttpResponseMessage> FetchFile(string sha256, long offset, CancellationToken ct);

/// <summary>A model that can never fit the cache (its files together are larger than the budget).</summary>
public sealed class ModelCacheFullException(string message) : Exception(message);

/// <summary>
/// The worker's disk cache of model files, within a size budget. Files are kept once by content
/// (<c>blobs/&lt;sha256&gt;</c>): a fetch is written to <c>partial/&lt;sha256&gt;.part</c> (resumed with a Range request
/// after a broken connection), its SHA-256 checked, then renamed in. Beside each file a marker
/// (<c>&lt;sha256&gt;.ok</c>) records the size and modification time it was verified with: a file whose size or time
/// changed since (written to, truncated) is hashed again before use, and fetched again when the hash no longer matches;
/// it is never used. A model is a folder of links to its files (<c>models/&lt;key&gt;/unet/model.onnx</c> →
/// <c>blobs/…</c>), so the same bytes in two models or two tenants are stored and fetched once. When a fetch needs room,
/// the least recently used files go first; a file of a model in use (between <see cref="AcquireAsync"/> and the
/// disposal of what it returns) is never evicted: if only files in use stand in the way the cache goes over its budget
/// until they are released, then trims back. One process per cache folder (a lock file says so).
/// </summary>
public sealed class ModelCache : IDisposable
{
    private const int Buffer = 1 << 20;
    private const int FetchAttempts = 5;
    private readonly string _blobs;
    private readonly string _partial;
    private readonly string _models;
    private readonly FileStream _lock;
    private readonly TimeProvider _clock;
    private readonly TimeSpan _stallTimeout;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task> _fetching = new(StringComparer.Ordinal);
    private long _used;
    private long _reserved;
    private long _downloads;
    private long _downloadedBytes;
    private long _hits;
    private long _rejected;
    private long _evictions;

    /// <param name="stallTimeout">How long a fetch may receive nothing before it is retried (resumed).</param>
    public ModelCache(string directory, long budgetBytes, TimeProvider? clock = null, TimeSpan? stallTimeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budgetBytes);
        Directory = Path.GetFullPath(directory);
        BudgetBytes = budgetBytes;
        _clock = clock ?? TimeProvider.System;
        _stallTimeout = stallTimeout ?? TimeSpan.FromSeconds(60);
        _blobs = Path.Combine(Directory, "blobs");
        _partial = Path.Combine(Directory, "partial");
        _models = Path.Combine(Directory, "models");
        System.IO.Directory.CreateDirectory(_blobs);
        System.IO.Directory.CreateDirectory(_partial);
        System.IO.Directory.CreateDirectory(_models);
        try
        {
            _lock = new FileStream(Path.Combine(Directory, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"the model cache {Directory} is in use by another worker process (one process per cache folder)", e);
        }

        Load();
    }

    public string Directory { get; }
    public long BudgetBytes { get; }

    /// <summary>Bytes of the files in the cache.</summary>
    public long UsedBytes
    {
        get
        {
            lock (_gate)
            {
                return _used;
            }
        }
    }

    /// <summary>Files fetched (from the server) since this cache was opened, and their bytes.</summary>
    public long Downloads => Interlocked.Read(ref _downloads);
    public long DownloadedBytes => Interlocked.Read(ref _downloadedBytes);

    /// <summary>Files a model found in the cache, verified, without a fetch.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Cached files found changed on disk (their hash no longer matched): deleted and fetched again.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    public long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>Whether the cache holds a file (by SHA-256) now.</summary>
    public bool Contains(string sha256)
    {
        lock (_gate)
        {
            return _entries.TryGetValue(sha256, out var e) && e.Present;
        }
    }

    /// <summary>Where a cached file's bytes are (whether or not it is there).</summary>
    public string BlobPath(string sha256) => Path.Combine(_blobs, CheckSha(sha256));

    /// <summary>
    /// The model made of <paramref name="files"/> as a folder, every file fetched (when missing or changed) and verified.
    /// Its files stay in the cache until the returned model is disposed.
    /// </summary>
    public async Task<CachedModel> AcquireAsync(IReadOnlyList<CacheFile> files, FetchFile fetch, IProgress<CacheProgress>? progress, CancellationToken ct)
    {
        var contents = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var f in files)
        {
            CheckPath(f.Path);
            var sha = CheckSha(f.Sha256);
            if (f.Size < 0 || (contents.TryGetValue(sha, out var known) && known != f.Size))
            {
                throw new InvalidDataException($"file {f.Path}: size {f.Size} for {sha}");
            }

            contents[sha] = f.Size;
        }

        var total = contents.Values.Sum();
        if (total > BudgetBytes)
        {
            throw new ModelCacheFullException(
                $"the model's files are {total} bytes, more than this worker's model cache may hold ({BudgetBytes} bytes, --model-cache-bytes)");
        }

        var shas = contents.Keys.ToList();
        Pin(shas);
        try
        {
            var done = new Dictionary<string, long>(StringComparer.Ordinal);
            void Report(string sha, long bytes)
            {
                done[sha] = bytes;
                progress?.Report(new CacheProgress(done.Values.Sum(), total));
            }

            progress?.Report(new CacheProgress(0, total));
            foreach (var (sha, size) in contents)
            {
                await EnsureAsync(sha, size, fetch, bytes => Report(sha, bytes), ct);
                Report(sha, size);
            }

            var folder = BuildFolder(files);
            Touch(shas);
            return new CachedModel(this, folder, [.. files], shas);
        }
        catch
        {
            Unpin(shas);
            throw;
        }
    }

    private async Task EnsureAsync(string sha, long size, FetchFile fetch, Action<long> bytes, CancellationToken ct)
    {
        while (true)
        {
            Task? other;
            lock (_gate)
            {
                _fetching.TryGetValue(sha, out other);
            }

            if (other is not null)
            {
                // Another model fetches the same bytes now: wait for it, then look again (it may have failed).
                await other.WaitAsync(ct);
                continue;
            }

            if (await VerifiedAsync(sha, size, ct))
            {
                Interlocked.Increment(ref _hits);
                return;
            }

            var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                if (_fetching.ContainsKey(sha))
                {
                    continue;
                }

                _fetching[sha] = mine.Task;
            }

            try
            {
                Reserve(size);
                try
                {
                    await FetchAsync(sha, size, fetch, bytes, ct);
                }
                finally
                {
                    lock (_gate)
                    {
                        _reserved -= size;
                    }
                }

                return;
            }
            finally
            {
                lock (_gate)
                {
                    _fetching.Remove(sha);
                }

                mine.TrySetResult();
            }
        }
    }

    /// <summary>Whether the file is in the cache and still what was verified; a changed one is hashed, and deleted when it is wrong.</summary>
    private async Task<bool> VerifiedAsync(string sha, long size, CancellationToken ct)
    {
        var blob = Path.Combine(_blobs, sha);
        var info = new FileInfo(blob);
        if (!info.Exists)
        {
            return false;
        }

        var marker = blob + ".ok";
        var stamp = Stamp(info);
        if (info.Length == size && File.Exists(marker) && await File.ReadAllTextAsync(marker, ct) == stamp)
        {
            return true;
        }

        if (info.Length == size)
        {
            await using var stream = new FileStream(blob, FileMode.Open, FileAccess.Read, FileShare.Read, Buffer, FileOptions.Asynchronous | FileOptions.SequentialScan);
            if (Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct)) == sha)
            {
                await File.WriteAllTextAsync(marker, stamp, ct);
                return true;
            }
        }

        // Changed on disk since it was verified: never used, fetched again.
        Interlocked.Increment(ref _rejected);
        lock (_gate)
        {
            Remove(sha);
        }

        return false;
    }

    private async Task FetchAsync(string sha, long size, FetchFile fetch, Action<long> bytes, CancellationToken ct)
    {
        var part = Path.Combine(_partial, sha + ".part");
        var offset = File.Exists(part) ? new FileInfo(part).Length : 0;
        if (offset >= size)
        {
            File.Delete(part);
            offset = 0;
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        // A fetch broken off earlier (in this process or a previous one): its bytes count, once hashed.
        await HashPartAsync(part, offset, hash, ct);

        var received = 0L;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var response = await fetch(sha, offset, ct);
                if (response.StatusCode != HttpStatusCode.PartialContent && offset > 0)
                {
                    // The whole file came instead of the rest: start over.
                    offset = 0;
                    hash.GetHashAndReset();
                }

                bytes(offset);
                await using var body = await response.Content.ReadAsStreamAsync(ct);
                await using var file = new FileStream(part, offset == 0 ? FileMode.Create : FileMode.Append, FileAccess.Write, FileShare.None, Buffer, FileOptions.Asynchronous);
                var chunk = new byte[Buffer];
                using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
                while (true)
                {
                    stall.CancelAfter(_stallTimeout);
                    var read = await body.ReadAsync(chunk, stall.Token);
                    if (read == 0)
                    {
                        break;
                    }

                    if (offset + read > size)
                    {
                        throw new InvalidDataException($"file {sha} is longer than its {size} bytes");
                    }

                    await file.WriteAsync(chunk.AsMemory(0, read), ct);
                    hash.AppendData(chunk, 0, read);
                    offset += read;
                    received += read;
                    bytes(offset);
                }

                if (offset != size)
                {
                    throw new IOException($"the fetch of {sha} ended after {offset} of {size} bytes");
                }

                break;
            }
            catch (Exception e) when (attempt < FetchAttempts && !ct.IsCancellationRequested
                                      && e is HttpRequestException or OperationCanceledException or IOException && e is not InvalidDataException)
            {
                // A broken or stalled connection: resume from what arrived (the partial file is flushed by its disposal).
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), _clock, ct);
                offset = File.Exists(part) ? Math.Min(new FileInfo(part).Length, size) : 0;
                hash.GetHashAndReset();
                await HashPartAsync(part, offset, hash, ct);
            }
        }

        Interlocked.Add(ref _downloadedBytes, received);
        var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (actual != sha)
        {
            File.Delete(part);
            throw new InvalidDataException($"the file fetched as {sha} has the SHA-256 {actual}");
        }

        var blob = Path.Combine(_blobs, sha);
        File.Move(part, blob, overwrite: true);
        await File.WriteAllTextAsync(blob + ".ok", Stamp(new FileInfo(blob)), ct);
        Interlocked.Increment(ref _downloads);
        lock (_gate)
        {
            var entry = Get(sha);
            if (!entry.Present)
            {
                entry.Present = true;
                entry.Size = size;
                _used += size;
            }

            entry.LastUse = Now;
        }
    }

    /// <summary>The first <paramref name="length"/> bytes of a partial file into the hash.</summary>
    private static async Task HashPartAsync(string part, long length, IncrementalHash hash, CancellationToken ct)
    {
        if (length <= 0)
        {
            return;
        }

        await using var earlier = new FileStream(part, FileMode.Open, FileAccess.ReadWrite, FileShare.None, Buffer, FileOptions.Asynchronous);
        earlier.SetLength(length);
        var chunk = new byte[Buffer];
        int read;
        while ((read = await earlier.ReadAsync(chunk, ct)) > 0)
        {
            hash.AppendData(chunk, 0, read);
        }
    }

    /// <summary>
    /// Makes room for <paramref name="size"/> more bytes: least recently used files first, never one in use. What files
    /// in use leave no room for goes over the budget until they are released (<see cref="Trim"/>).
    /// </summary>
    private void Reserve(long size)
    {
        lock (_gate)
        {
            Evict(size);
            _reserved += size;
        }
    }

    private void Evict(long incoming)
    {
        while (_used + _reserved + incoming > BudgetBytes)
        {
            var victim = _entries.Values.Where(e => e.Present && e.Pins == 0).MinBy(e => e.LastUse);
            if (victim is null)
            {
                return;
            }

            Remove(victim.Sha256);
            Interlocked.Increment(ref _evictions);
        }
    }

    /// <summary>Back under the budget after models were released.</summary>
    private void Trim()
    {
        lock (_gate)
        {
            Evict(0);
        }
    }

    private void Remove(string sha)
    {
        var blob = Path.Combine(_blobs, sha);
        File.Delete(blob + ".ok");
        File.Delete(blob);
        if (_entries.TryGetValue(sha, out var entry) && entry.Present)
        {
            entry.Present = false;
            _used -= entry.Size;
        }

        if (entry is { Pins: 0 })
        {
            _entries.Remove(sha);
        }
    }

    /// <summary>The model's folder: each file a link to its cached bytes (a copy where links cannot be made), named by the files' paths and contents.</summary>
    private string BuildFolder(IReadOnlyList<CacheFile> files)
    {
        var manifest = string.Join('\n', files.OrderBy(f => f.Path, StringComparer.Ordinal).Select(f => $"{f.Path}\t{f.Sha256.ToLowerInvariant()}"));
        var folder = Path.Combine(_models, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(manifest)))[..20]);
        lock (_gate)
        {
            foreach (var f in files)
            {
                var target = Path.GetFullPath(Path.Combine(folder, f.Path.Replace('/', Path.DirectorySeparatorChar)));
                var blob = Path.Combine(_blobs, f.Sha256.ToLowerInvariant());
                System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                var existing = new FileInfo(target);
                if (existing.LinkTarget == blob)
                {
                    continue;
                }

                if (existing.LinkTarget is null && existing.Exists && existing.Length == f.Size && existing.LastWriteTimeUtc >= new FileInfo(blob).LastWriteTimeUtc)
                {
                    continue; // a copy made where links could not be, of these bytes
                }

                if (existing.LinkTarget is not null || existing.Exists)
                {
                    File.Delete(target);
                }

                try
                {
                    File.CreateSymbolicLink(target, blob);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
                {
                    File.Copy(blob, target, overwrite: true);
                }
            }
        }

        return folder;
    }

    private void Pin(IEnumerable<string> shas)
    {
        lock (_gate)
        {
            foreach (var sha in shas)
            {
                Get(sha).Pins++;
            }
        }
    }

    internal void Unpin(IEnumerable<string> shas)
    {
        lock (_gate)
        {
            foreach (var sha in shas)
            {
                if (_entries.TryGetValue(sha, out var e) && --e.Pins == 0 && !e.Present)
                {
                    _entries.Remove(sha);
                }
            }
        }

        Trim();
    }

    /// <summary>Marks a use: the files' last use (kept across restarts as their markers' time) is now.</summary>
    private void Touch(IEnumerable<string> shas)
    {
        var now = Now;
        lock (_gate)
        {
            foreach (var sha in shas)
            {
                Get(sha).LastUse = now;
                try
                {
                    File.SetLastWriteTimeUtc(Path.Combine(_blobs, sha + ".ok"), now);
                }
                catch (IOException)
                {
                    // the order survives in memory; only a restart forgets it
                }
            }
        }
    }

    /// <summary>What is on disk from an earlier run: verified files (their last use from their markers), and nothing else counted.</summary>
    private void Load()
    {
        foreach (var path in System.IO.Directory.EnumerateFiles(_blobs))
        {
            var name = Path.GetFileName(path);
            if (name.Length == 64 && name.All(char.IsAsciiHexDigitLower))
            {
                var marker = path + ".ok";
                var entry = Get(name);
                entry.Present = true;
                entry.Size = new FileInfo(path).Length;
                entry.LastUse = File.Exists(marker) ? File.GetLastWriteTimeUtc(marker) : File.GetLastWriteTimeUtc(path);
                _used += entry.Size;
            }
            else if (!(name.EndsWith(".ok", StringComparison.Ordinal) && File.Exists(path[..^3])))
            {
                File.Delete(path); // a stray marker or anything else: not the cache's
            }
        }

        Trim();
    }

    private Entry Get(string sha)
    {
        if (!_entries.TryGetValue(sha, out var e))
        {
            e = new Entry(sha);
            _entries[sha] = e;
        }

        return e;
    }

    private DateTime Now => _clock.GetUtcNow().UtcDateTime;

    private static string Stamp(FileInfo info) =>
        string.Create(CultureInfo.InvariantCulture, $"{info.Length} {info.LastWriteTimeUtc.Ticks}");

    private static string CheckSha(string sha256)
    {
        var sha = sha256.ToLowerInvariant();
        return sha.Length == 64 && sha.All(char.IsAsciiHexDigit) ? sha : throw new InvalidDataException($"'{sha256}' is not a SHA-256");
    }

    /// <summary>A file's place in its model's folder: relative, '/' between parts, none of them empty, <c>.</c> or <c>..</c>.</summary>
    private static void CheckPath(string path)
    {
        if (string.IsNullOrEmpty(path) || path.Contains('\\', StringComparison.Ordinal) || path.Contains(':', StringComparison.Ordinal)
            || path.Split('/').Any(p => p.Length == 0 || p is "." or ".."))
        {
            throw new InvalidDataException($"'{path}' is not a relative path inside a model folder");
        }
    }

    public void Dispose() => _lock.Dispose();

    private sealed class Entry(string sha256)
    {
        public string Sha256 { get; } = sha256;
        public long Size { get; set; }
        public DateTime LastUse { get; set; }
        public int Pins { get; set; }
        public bool Present { get; set; }
    }
}

/// <summary>A model in the cache, as a folder; its files stay until this is disposed.</summary>
public sealed class CachedModel : IDisposable
{
    private readonly ModelCache _cache;
    private readonly IReadOnlyList<string> _shas;
    private int _released;

    internal CachedModel(ModelCache cache, string folder, IReadOnlyList<CacheFile> files, IReadOnlyList<string> shas)
    {
        _cache = cache;
        Folder = folder;
        Files = files;
        _shas = shas;
    }

    /// <summary>The model's folder: its files at their paths.</summary>
    public string Folder { get; }
    public IReadOnlyList<CacheFile> Files { get; }

    /// <summary>Where one of the model's files is (by its path in the model).</summary>
    public string PathOf(string relative) => Path.Combine(Folder, relative.Replace('/', Path.DirectorySeparatorChar));

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _cache.Unpin(_shas);
        }
    }
}
