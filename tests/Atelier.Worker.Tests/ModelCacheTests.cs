using System.Collections.Concurrent;
using System.Security.Cryptography;
using Atelier.Worker.Delivery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Atelier.Worker.Tests;

/// <summary>
/// A server of files by SHA-256 on loopback, as the worker route serves them (Range requests answered with 206). It
/// records every request's range, and can break a response off halfway or send other bytes than asked for.
/// </summary>
public sealed class BlobServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient _http;

    private BlobServer(WebApplication app, Uri address)
    {
        _app = app;
        _http = new HttpClient { BaseAddress = address };
    }

    public ConcurrentDictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);
    public ConcurrentQueue<(string Sha, long? From)> Requests { get; } = new();
    public int BreakNextAfter { get; set; } = -1;
    public byte[]? Impostor { get; set; }

    public static async Task<BlobServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        BlobServer? self = null;
        app.MapGet("/blobs/{sha}", async (string sha, HttpContext http) =>
        {
            var range = http.Request.GetTypedHeaders().Range?.Ranges.FirstOrDefault()?.From;
            self!.Requests.Enqueue((sha, range));
            if (!self.Files.TryGetValue(sha, out var bytes))
            {
                return Results.NotFound();
            }

            if (self.Impostor is { } other)
            {
                return Results.Bytes(other, "application/octet-stream");
            }

            if (self.BreakNextAfter >= 0)
            {
                var cut = self.BreakNextAfter;
                self.BreakNextAfter = -1;
                http.Response.ContentLength = bytes.Length;
                await http.Response.Body.WriteAsync(bytes.AsMemory(0, cut));
                await http.Response.Body.FlushAsync();
                http.Abort();
                return Results.Empty;
            }

            return Results.Bytes(bytes, "application/octet-stream", enableRangeProcessing: true);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self = new BlobServer(app, new Uri(address));
        return self;
    }

    /// <summary>A file of <paramref name="size"/> random bytes, served by its hash.</summary>
    public CacheFile Add(string path, int size)
    {
        var bytes = new byte[size];
        Random.Shared.NextBytes(bytes);
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        Files[sha] = bytes;
        return new CacheFile(path, sha, size);
    }

    /// <summary>What the worker passes the cache: a GET of the file, with a Range from the offset.</summary>
    public async Task<HttpResponseMessage> FetchAsync(string sha, long offset, CancellationToken ct)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, $"/blobs/{sha}");
        if (offset > 0)
        {
            req.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(offset, null);
        }

        var resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct);
        if (!resp.IsSuccessStatusCode)
        {
            resp.Dispose();
            throw new HttpRequestException($"{(int)resp.StatusCode}");
        }

        return resp;
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>The worker's model cache (<see cref="ModelCache"/>) against files served over loopback HTTP.</summary>
public sealed class ModelCacheTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("atelier-cache-").FullName;
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 29, 8, 0, 0, TimeSpan.Zero));
    private BlobServer _server = null!;

    public async ValueTask InitializeAsync() => _server = await BlobServer.StartAsync();

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private Task<CachedModel> AcquireAsync(ModelCache cache, params CacheFile[] files) => cache.AcquireAsync(files, _server.FetchAsync, null, CancellationToken.None);

    private async Task UseAsync(ModelCache cache, params CacheFile[] files)
    {
        using var _ = await AcquireAsync(cache, files);
        _clock.Advance(TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task Acquire_AModelFolder_PutsEveryFileAtItsPath_AndTheSameModelAgainFetchesNothing()
    {
        using var cache = new ModelCache(_folder, 1 << 20, _clock);
        var unet = _server.Add("v2/unet/model.onnx", 5000);
        var vocab = _server.Add("v2/tokenizer/vocab.json", 300);
        var progress = new List<CacheProgress>();

        using (var model = await cache.AcquireAsync([unet, vocab], _server.FetchAsync, new Collect(progress), CancellationToken.None))
        {
            Assert.Equal(_server.Files[unet.Sha256], File.ReadAllBytes(model.PathOf("v2/unet/model.onnx")));
            Assert.Equal(_server.Files[vocab.Sha256], File.ReadAllBytes(Path.Combine(model.Folder, "v2", "tokenizer", "vocab.json")));
        }

        Assert.Equal(2, cache.Downloads);
        Assert.Equal(new CacheProgress(5300, 5300), progress[^1]);
        Assert.All(progress, p => Assert.Equal(5300, p.BytesTotal));

        using (var again = await AcquireAsync(cache, unet, vocab))
        {
            Assert.Equal(_server.Files[unet.Sha256], File.ReadAllBytes(again.PathOf("v2/unet/model.onnx")));
        }

        Assert.Equal(2, cache.Downloads);
        Assert.Equal(2, cache.Hits);
        Assert.Equal(2, _server.Requests.Count);
    }

    [Fact]
    public async Task Acquire_OverTheBudget_EvictsTheLeastRecentlyUsed_NeverAFileInUse()
    {
        using var cache = new ModelCache(_folder, 3000, _clock);
        var (a, b, c, d, e) = (_server.Add("a.onnx", 1000), _server.Add("b.onnx", 1000), _server.Add("c.onnx", 1000), _server.Add("d.onnx", 1000), _server.Add("e.onnx", 1000));
        await UseAsync(cache, a);
        await UseAsync(cache, b);
        await UseAsync(cache, c);
        await UseAsync(cache, a); // a is used again: b is now the least recently used

        await UseAsync(cache, d);

        Assert.True(cache.Contains(a.Sha256) && cache.Contains(c.Sha256) && cache.Contains(d.Sha256));
        Assert.False(cache.Contains(b.Sha256));
        Assert.False(File.Exists(cache.BlobPath(b.Sha256)));
        Assert.Equal(3000, cache.UsedBytes);

        // c (older) and d are in use: b's room comes from a, the only one not in use.
        using (await AcquireAsync(cache, c))
        using (await AcquireAsync(cache, d))
        {
            await UseAsync(cache, b);
            Assert.True(cache.Contains(c.Sha256) && cache.Contains(d.Sha256) && cache.Contains(b.Sha256));
            Assert.False(cache.Contains(a.Sha256));

            // Every file in use: the new one comes in over the budget rather than evict one of them…
            using (await AcquireAsync(cache, b))
            using (await AcquireAsync(cache, e))
            {
                Assert.Equal(4000, cache.UsedBytes);
                Assert.True(cache.Contains(c.Sha256) && cache.Contains(d.Sha256) && cache.Contains(b.Sha256) && cache.Contains(e.Sha256));
            }
        }

        // …and as they are released the cache goes back within its budget: e, released first while the rest were in use, goes.
        Assert.Equal(3000, cache.UsedBytes);
        Assert.True(cache.Contains(b.Sha256) && cache.Contains(c.Sha256) && cache.Contains(d.Sha256));
        Assert.False(cache.Contains(e.Sha256));
        Assert.Equal(3, cache.Evictions);
    }

    [Fact]
    public async Task Acquire_AModelLargerThanTheBudget_IsRefused_WithoutAFetch()
    {
        using var cache = new ModelCache(_folder, 1500, _clock);
        var error = await Assert.ThrowsAsync<ModelCacheFullException>(() => AcquireAsync(cache, _server.Add("x/a.onnx", 1000), _server.Add("x/b.onnx", 1000)));
        Assert.Contains("2000 bytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("1500 bytes", error.Message, StringComparison.Ordinal);
        Assert.Empty(_server.Requests);
    }

    [Fact]
    public async Task Fetch_BrokenOffHalfway_ResumesWithARangeRequest()
    {
        using var cache = new ModelCache(_folder, 1 << 20); // the real clock: the retry waits a moment

        var big = _server.Add("unet/weights.pb", 200_000);
        _server.BreakNextAfter = 80_000;

        using (var model = await AcquireAsync(cache, big))
        {
            Assert.Equal(_server.Files[big.Sha256], File.ReadAllBytes(model.PathOf("unet/weights.pb")));
        }

        var requests = _server.Requests.ToList();
        Assert.Equal(2, requests.Count);
        Assert.Null(requests[0].From);
        Assert.InRange(requests[1].From ?? 0, 1, 80_000); // what arrived before the break is kept
        Assert.Equal(200_000, cache.DownloadedBytes);
    }

    [Fact]
    public async Task Fetch_OtherBytesThanTheHash_AreNeverCached()
    {
        using var cache = new ModelCache(_folder, 1 << 20, _clock);
        var file = _server.Add("unet/model.onnx", 4000);
        _server.Impostor = new byte[4000];

        await Assert.ThrowsAsync<InvalidDataException>(() => AcquireAsync(cache, file));

        Assert.False(cache.Contains(file.Sha256));
        Assert.False(File.Exists(cache.BlobPath(file.Sha256)));
        Assert.Equal(0, cache.UsedBytes);
        _server.Impostor = null;
        using var model = await AcquireAsync(cache, file);
        Assert.Equal(_server.Files[file.Sha256], File.ReadAllBytes(model.PathOf("unet/model.onnx")));
    }

    [Fact]
    public async Task Acquire_PathsThatLeaveTheFolder_AreRefused()
    {
        using var cache = new ModelCache(_folder, 1 << 20, _clock);
        foreach (var path in new[] { "../evil.onnx", "/etc/evil.onnx", "a/../../evil.onnx", "a\\evil.onnx", "", "a//b.onnx" })
        {
            await Assert.ThrowsAsync<InvalidDataException>(() => AcquireAsync(cache, _server.Add(path, 10)));
        }

        Assert.Empty(_server.Requests);
    }

    [Fact]
    public async Task TheCache_OutlivesItsProcess_AndBelongsToOneProcessAtATime()
    {
        var file = _server.Add("model.onnx", 2000);
        using (var cache = new ModelCache(_folder, 1 << 20, _clock))
        {
            await UseAsync(cache, file);
            Assert.Throws<IOException>(() => new ModelCache(_folder, 1 << 20, _clock));
        }

        using var reopened = new ModelCache(_folder, 1 << 20, _clock);
        Assert.Equal(2000, reopened.UsedBytes);
        await UseAsync(reopened, file);
        Assert.Equal(0, reopened.Downloads);
        Assert.Equal(1, reopened.Hits);
    }

    private sealed class Collect(List<CacheProgress> into) : IProgress<CacheProgress>
    {
        public void Report(CacheProgress value) => into.Add(value);
    }
}
