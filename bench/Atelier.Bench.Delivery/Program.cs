using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Atelier.Server;
using Atelier.Storage;
using Atelier.Worker.Runner;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

// Model delivery benchmark (issue 15, item 5), one run:
//   1. the first job of a fresh worker (a new WorkerHost, nothing loaded) for a model that is not in its cache (every
//      file fetched through the server's worker route, hashed, renamed in) against one that is (a worker started on the
//      cache the first one filled: files verified by their markers, the folder loaded from the cache), and a second job
//      on that worker (model loaded) as the reference; sync txt2img from submit to answer;
//   2. reading the model's large file: from the worker's cache (plain, and with the SHA-256 a changed file costs)
//      against the object store directly (IObjectStore, the local store) and the worker route over loopback HTTP.
// Usage: dotnet bench/Atelier.Bench.Delivery/bin/Release/net10.0/Atelier.Bench.Delivery.dll ["command to record"] [MiB]
var command = args.Length > 0 ? args[0] : "bash bench/delivery/run.sh";
var mib = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 256;
var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
var root = FindRoot();
var folder = Directory.CreateTempSubdirectory("atelier-bench-delivery-").FullName;
var overall = Stopwatch.StartNew();
var admin = Atelier.Core.Security.Secrets.Issue(Atelier.Core.Security.Secrets.PlatformKeyPrefix);
var app = AtelierServer.Build([
    "--Atelier:Server:Urls=http://127.0.0.1:0", $"--Atelier:Server:DataDirectory={Path.Combine(folder, "data")}",
    "--Atelier:Database:Provider=sqlite", $"--Atelier:Database:ConnectionString=Data Source={Path.Combine(folder, "atelier.db")}",
    $"--Atelier:Auth:BootstrapAdminKey={admin}", "--Atelier:Embedded:DemoTenant=false", "--Atelier:Embedded:LocalWorker=false",
    $"--Atelier:Tenancy:DefaultsFile={Path.Combine(root, "src", "Atelier", "defaults", "tenant-defaults.json")}",
    "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.EntityFrameworkCore=None",
    "--Atelier:RateLimits:PerCredential:TokenLimit=1000000000", "--Atelier:RateLimits:PerCredential:TokensPerPeriod=1000000000",
    "--Atelier:RateLimits:PerTenant:TokenLimit=1000000000", "--Atelier:RateLimits:PerTenant:TokensPerPeriod=1000000000",
]);
await app.StartAsync();
var baseUri = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
try
{
    using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromMinutes(10) };
    var (tenantAdmin, appToken) = await TenantAsync(http);

    // The model: the tiny demo pipeline with weights of its own, plus one large file as a real export has
    // (unet/weights.pb, random bytes the tiny UNet does not read: it is fetched, hashed and stored like any file).
    var source = Atelier.Engine.Onnx.DemoModel.Write(Path.Combine(folder, "source"), "bench-fox");
    var large = Path.Combine(source, "unet", "weights.pb");
    await WriteRandomAsync(large, (long)mib << 20);
    var files = Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
    var totalBytes = files.Sum(f => new FileInfo(f).Length);
    var model = (await Send(http, HttpMethod.Post, "/api/v1/models", tenantAdmin, new { name = "bench-fox", type = "onnx" })).GetProperty("data").GetProperty("id").GetString()!;
    var entries = new List<object>();
    foreach (var file in files)
    {
        var path = Path.GetRelativePath(source, file).Replace(Path.DirectorySeparatorChar, '/');
        entries.Add(new { aliasName = path, uploadId = await UploadAsync(http, tenantAdmin, file), primary = path == "unet/model.onnx" });
    }

    await Send(http, HttpMethod.Post, $"/api/v1/models/{model}/versions", tenantAdmin, new { name = "v1", files = entries });
    var largeSha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(large)));
    var workerKey = (await Send(http, HttpMethod.Post, "/api/v1/platform/worker-keys", admin, new { name = "bench" })).GetProperty("data").GetProperty("secret").GetString()!;
    Console.WriteLine($"model: {files.Count} files, {totalBytes} bytes ({mib} MiB in unet/weights.pb)");

    // ---- 1. first job, not in the cache / in the cache; then a job with the model loaded
    var engineModels = Path.Combine(folder, "engine-models");
    var request = JsonSerializer.Serialize(new { prompt = "a red fox", steps = 2, width = 64, height = 64, seed = 1, override_settings = new { sd_model_checkpoint = "bench-fox" } });
    var (cold, hit, warm, fetchMs) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
    for (var round = 0; round <= 3; round++)
    {
        var cache = Path.Combine(folder, $"cache-{round}");
        double coldMs, hitMs, warmMs;
        long downloaded;
        await using (var fresh = await WorkerAsync(cache))
        {
            coldMs = await Txt2ImgAsync();
            downloaded = fresh.Host.Cache!.DownloadedBytes;
        }

        await using (var again = await WorkerAsync(cache))
        {
            hitMs = await Txt2ImgAsync();
            warmMs = await Txt2ImgAsync();
            if (again.Host.Cache!.Downloads != 0)
            {
                throw new InvalidOperationException("the second worker fetched files its cache had");
            }
        }

        Console.WriteLine($"round {round}: not in cache {F(coldMs, "0")} ms ({downloaded} bytes fetched), in cache {F(hitMs, "0")} ms, loaded {F(warmMs, "0")} ms");
        if (round > 0)
        {
            // Round 0 warms the process up (JIT, ONNX Runtime's first session): not counted.
            cold.Add(coldMs);
            hit.Add(hitMs);
            warm.Add(warmMs);
        }
    }

    // ---- 2. reading the large file: the worker's cache, the object store, the worker route
    var cachedFile = Path.Combine(folder, "cache-1", "blobs", largeSha);
    var store = app.Services.GetRequiredService<IObjectStore>();
    var (fromCache, fromCacheHashed, fromStore, fromRoute) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
    var routeLease = await LeaseByHandAsync();
    for (var i = 0; i < 5; i++)
    {
        fromCache.Add(await TimeReadAsync(() => Task.FromResult<Stream>(File.OpenRead(cachedFile)), hash: false));
        fromCacheHashed.Add(await TimeReadAsync(() => Task.FromResult<Stream>(File.OpenRead(cachedFile)), hash: true));
        fromStore.Add(await TimeReadAsync(() => store.OpenReadAsync(ObjectStores.BlobKey(largeSha), CancellationToken.None), hash: false));
        fromRoute.Add(await TimeReadAsync(async () =>
        {
            var req = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/worker/jobs/{routeLease.JobId}/files/{largeSha}?attempt={routeLease.Attempt}");
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", workerKey);
            var resp = await http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
            resp.EnsureSuccessStatusCode();
            return await resp.Content.ReadAsStreamAsync();
        }, hash: false));
    }

    double Throughput(List<double> ms) => ((double)mib) / (Median(ms) / 1000);
    Console.WriteLine($"read {mib} MiB: cache {F(Throughput(fromCache), "0")} MiB/s, cache+sha256 {F(Throughput(fromCacheHashed), "0")} MiB/s, " +
                      $"store {F(Throughput(fromStore), "0")} MiB/s, route {F(Throughput(fromRoute), "0")} MiB/s");

    // ---- the report
    var machine = $"{Environment.ProcessorCount} cores ({CpuModel()}, {MemoryGiB()} GiB), .NET {Environment.Version}, SQLite, the local object store";
    var section = $"""
        <!-- delivery:begin -->
        ## Model delivery: first job with and without the model in the worker's cache (issue 15)

        Measured {DateTime.UtcNow:yyyy-MM-dd} on {machine}, with `{command}`. The server and the workers run in one
        process (real HTTP on loopback, the built-in engine); the model is the tiny demo pipeline with weights of its own
        plus a {mib} MiB `unet/weights.pb` of random bytes (as a real export has; the tiny UNet does not read it, so the
        engine's load time here is the small graphs', not a real model's): **{files.Count} files, {totalBytes / 1048576.0:0.0} MiB**,
        uploaded through the API. Each round starts a fresh worker on an empty cache and times its first job (sync
        `txt2img`, 64×64, 2 steps, submit → answer), stops it, starts another worker on the cache the first one filled
        and times its first job, then a second job on that worker. One warm-up round (JIT, ONNX Runtime's first
        session) is not counted; medians of 3 rounds.

        | first job of a fresh worker | p50 | all |
        |---|---:|---|
        | model **not in the cache**: {files.Count} files fetched through the worker route, hashed, renamed in, then loaded | {F(Median(cold), "0")} ms | {string.Join(", ", cold.Select(c => F(c, "0")))} ms |
        | model **in the cache**: files verified by their markers (no hashing), the folder loaded from the cache | {F(Median(hit), "0")} ms | {string.Join(", ", hit.Select(c => F(c, "0")))} ms |
        | reference: the next job on that worker (model loaded in memory) | {F(Median(warm), "0")} ms | {string.Join(", ", warm.Select(c => F(c, "0")))} ms |
        | **what the cache saves on a first job** (not in − in) | **{F(Median(cold) - Median(hit), "0")} ms** ({F(mib / ((Median(cold) - Median(hit)) / 1000), "0")} MiB/s of fetching) | |

        Reading the {mib} MiB file once, start to end (1 MiB reads), 5 times each, medians; every file was just written, so
        all of it is in the page cache (a disk read would be slower on every row alike):

        | read | MiB/s | ms |
        |---|---:|---:|
        | the worker's cache: `blobs/<sha256>` | {F(Throughput(fromCache), "0")} | {F(Median(fromCache), "0")} |
        | the worker's cache, with its SHA-256 (what a file changed on disk costs before use) | {F(Throughput(fromCacheHashed), "0")} | {F(Median(fromCacheHashed), "0")} |
        | the object store directly (`IObjectStore.OpenReadAsync`, local store, in the server) | {F(Throughput(fromStore), "0")} | {F(Median(fromStore), "0")} |
        | the worker route over loopback HTTP (`GET /api/v1/worker/jobs/{"{id}"}/files/{"{sha256}"}`, what a fetch reads) | {F(Throughput(fromRoute), "0")} | {F(Median(fromRoute), "0")} |

        {Note()}
        <!-- delivery:end -->
        """;
    var docs = Path.Combine(root, "docs", "benchmarks.md");
    var text = File.ReadAllText(docs);
    var start = text.IndexOf("<!-- delivery:begin -->", StringComparison.Ordinal);
    var end = text.IndexOf("<!-- delivery:end -->", StringComparison.Ordinal);
    text = start >= 0 && end > start
        ? text[..start] + section.Trim() + text[(end + "<!-- delivery:end -->".Length)..]
        : text.TrimEnd() + "\n\n" + section.Trim() + "\n";
    File.WriteAllText(docs, text);
    Console.WriteLine($"written to {docs}");

    string Note() =>
        $"A first job without the model pays for moving {totalBytes / 1048576.0:0} MiB through the server (object store → " +
        "Kestrel → loopback → the worker's partial file, hashed as it arrives, renamed in) before the engine starts; with " +
        "the model in the cache it pays a stat and a marker read per file, and the model's own load. The fetch runs well " +
        "below the route's read speed because the worker writes every byte to its disk (this machine's disk writes at " +
        "about 250 MiB/s: `cp` in the upload section) and hashes it; the route alone, over loopback, reads at the speed in " +
        "the last row. Reading a cached file is as fast as reading the object store in the server (both are the page " +
        "cache here): on one machine the cache saves the route, the write and the hashing, not the disk. Across a " +
        "network, or from S3, the fetch is bounded by that link too, and the saving grows with the model.";

    async Task<double> Txt2ImgAsync()
    {
        var watch = Stopwatch.StartNew();
        using var req = new HttpRequestMessage(HttpMethod.Post, "/sdapi/v1/txt2img") { Content = new StringContent(request, System.Text.Encoding.UTF8, "application/json") };
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", appToken);
        using var resp = await http.SendAsync(req);
        var body = await resp.Content.ReadAsStringAsync();
        if (!resp.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"txt2img: {(int)resp.StatusCode} {body}");
        }

        return watch.Elapsed.TotalMilliseconds;
    }

    async Task<BenchWorker> WorkerAsync(string cache)
    {
        var host = new WorkerHost(new WorkerOptions
        {
            Server = baseUri, Token = workerKey, Engine = "builtin", Id = "bench-worker", ModelsDirectory = engineModels,
            ModelCacheDirectory = cache, WaitSeconds = 2,
        }, NullLogger.Instance);
        var worker = new BenchWorker(host);
        var deadline = Stopwatch.StartNew();
        while (!host.Registered)
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException("the worker did not register");
            }

            await Task.Delay(10);
        }

        return worker;
    }

    async Task<(string JobId, int Attempt)> LeaseByHandAsync()
    {
        // A job held by a lease of the bench's own, so that the route's fence lets the reads through.
        await Send(http, HttpMethod.Post, "/api/v1/worker/register", workerKey, new { workerId = "bench-reader", engine = "noop", slots = 1 });
        await Send(http, HttpMethod.Post, "/api/v1/agents/default/jobs", appToken, new { input = JsonSerializer.Deserialize<JsonElement>(request) });
        var lease = (await Send(http, HttpMethod.Post, "/api/v1/worker/lease", workerKey, new { workerId = "bench-reader", slot = 0, hot = new string?[1], waitSeconds = 5 }))
            .GetProperty("data");
        return (lease.GetProperty("id").GetString()!, lease.GetProperty("attempt").GetInt32());
    }
}
finally
{
    await app.StopAsync();
    await app.DisposeAsync();
    try
    {
        Directory.Delete(folder, recursive: true);
    }
    catch (IOException)
    {
    }

    Console.WriteLine($"done in {overall.Elapsed.TotalSeconds:0} s");
}

return 0;

async Task<string> UploadAsync(HttpClient http, string bearer, string file)
{
    string sha;
    await using (var content = File.OpenRead(file))
    {
        sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(content));
    }

    var upload = (await Send(http, HttpMethod.Post, "/api/v1/uploads", bearer,
        new { type = "onnx", fileName = Path.GetFileName(file), size = new FileInfo(file).Length, sha256 = sha })).GetProperty("data");
    using var put = new HttpRequestMessage(HttpMethod.Put, upload.GetProperty("url").GetString()) { Content = new StreamContent(File.OpenRead(file)) };
    foreach (var h in upload.GetProperty("headers").EnumerateObject())
    {
        put.Headers.Add(h.Name, h.Value.GetString());
    }

    using var r = await http.SendAsync(put);
    if (!r.IsSuccessStatusCode)
    {
        throw new InvalidOperationException($"upload of {file}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
    }

    return upload.GetProperty("id").GetString()!;
}

async Task<(string TenantAdmin, string AppToken)> TenantAsync(HttpClient http)
{
    var uid = "bench-" + Guid.NewGuid().ToString("N")[..8];
    await Send(http, HttpMethod.Post, "/api/v1/accounts", admin, new { uid, name = "Bench" });
    var tenant = (await Send(http, HttpMethod.Post, "/api/v1/tenants", admin, new { accountUid = uid, name = "Bench" })).GetProperty("data").GetProperty("id").GetString()!;
    await Send(http, HttpMethod.Post, $"/api/v1/tenants/{tenant}/init", admin, null);
    await Send(http, HttpMethod.Post, $"/api/v1/tenants/{tenant}/activate", admin, null);
    var appId = (await Send(http, HttpMethod.Post, "/api/v1/apps", admin, new { name = "bench" }, tenant)).GetProperty("data").GetProperty("id").GetString()!;
    var adminToken = (await Send(http, HttpMethod.Post, $"/api/v1/apps/{appId}/tokens", admin, new { name = "admin", scopes = new[] { "admin" } }, tenant))
        .GetProperty("data").GetProperty("secret").GetString()!;
    var appToken = (await Send(http, HttpMethod.Post, $"/api/v1/apps/{appId}/tokens", admin, new { name = "backend", scopes = new[] { "app" } }, tenant))
        .GetProperty("data").GetProperty("secret").GetString()!;
    return (adminToken, appToken);
}

async Task<JsonElement> Send(HttpClient http, HttpMethod method, string path, string bearer, object? body, string? tenant = null)
{
    using var req = new HttpRequestMessage(method, path);
    req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
    req.Headers.Add("X-Operator-Id", "bench");
    if (tenant is not null)
    {
        req.Headers.Add("X-Tenant-Id", tenant);
    }

    if (body is not null)
    {
        req.Content = JsonContent.Create(body, options: json);
    }

    using var r = await http.SendAsync(req);
    var text = await r.Content.ReadAsStringAsync();
    if (!r.IsSuccessStatusCode)
    {
        throw new InvalidOperationException($"{method} {path}: {(int)r.StatusCode} {text}");
    }

    return r.StatusCode == HttpStatusCode.NoContent || text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
}

static async Task WriteRandomAsync(string path, long bytes)
{
    await using var file = File.Create(path);
    var chunk = new byte[1 << 20];
    for (long written = 0; written < bytes; written += chunk.Length)
    {
        Random.Shared.NextBytes(chunk);
        await file.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, bytes - written)));
    }
}

static async Task<double> TimeReadAsync(Func<Task<Stream>> open, bool hash)
{
    var watch = Stopwatch.StartNew();
    await using var stream = await open();
    using var sha = hash ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
    var buffer = new byte[1 << 20];
    int read;
    while ((read = await stream.ReadAsync(buffer)) > 0)
    {
        sha?.AppendData(buffer, 0, read);
    }

    sha?.GetHashAndReset();
    return watch.Elapsed.TotalMilliseconds;
}

static string CpuModel() =>
    File.Exists("/proc/cpuinfo")
        ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU"
        : "unknown CPU";

static string MemoryGiB() =>
    File.Exists("/proc/meminfo") && File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)) is { } line
        ? (long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1048576.0).ToString("0", CultureInfo.InvariantCulture)
        : "?";

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted[sorted.Count / 2];
}

static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Atelier.slnx")))
    {
        dir = dir.Parent;
    }

    return dir?.FullName ?? throw new InvalidOperationException("run from inside the repository");
}

/// <summary>A worker of this process (the same <see cref="WorkerHost"/> <c>atelier worker</c> runs), stopped and disposed with it.</summary>
internal sealed class BenchWorker : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    public BenchWorker(WorkerHost host)
    {
        Host = host;
        _run = Task.Run(() => host.RunAsync(_stop.Token));
    }

    public WorkerHost Host { get; }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (OperationCanceledException)
        {
        }

        Host.Dispose();
        _stop.Dispose();
    }
}
