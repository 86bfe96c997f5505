using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Atelier.Server;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

// Functions benchmark (issue 14), one run, every figure side by side:
//   1. router overhead: a small GET (the test instance's `/`, an a1111-engine function's `/sdapi/v1/options`) and a
//      txt2img through `/fn/...` against the same program started by this benchmark on a port of its own;
//   2. cold start of an a1111-engine function (zero instances → answer) against the same request warm, with the
//      engine's own start (process → `/sdapi/v1/options` answers) as the reference;
//   3. a step load 0 → 64 clients → 0 on one function: instances over time, 503s, lost requests.
// Usage: dotnet bench/Atelier.Bench.Functions/bin/Release/net10.0/Atelier.Bench.Functions.dll ["command to record"]
// bench/functions/run.sh builds it, runs it and so writes its section of docs/benchmarks.md.
var command = args.Length > 0 ? args[0] : "bash bench/functions/run.sh";
var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
var root = FindRoot();
var dotnet = Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet"
    ? host : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
var testInstance = Path.Combine(root, "tests", "Atelier.Runtime.TestInstance", "bin", "Release", "net10.0", "Atelier.Runtime.TestInstance.dll");
var atelierDll = Path.Combine(AppContext.BaseDirectory, "atelier.dll");
foreach (var file in new[] { testInstance, atelierDll })
{
    if (!File.Exists(file))
    {
        Console.Error.WriteLine($"{file} is missing: build bench/Atelier.Bench.Functions -c Release first");
        return 1;
    }
}

var folder = Directory.CreateTempSubdirectory("atelier-bench-functions-").FullName;
var models = Path.Combine(folder, "models");
Atelier.Engine.Onnx.DemoModel.Ensure(models);
var started = new List<Process>();
using var self = Process.GetCurrentProcess();
var overall = Stopwatch.StartNew();
var admin = Atelier.Core.Security.Secrets.Issue(Atelier.Core.Security.Secrets.PlatformKeyPrefix);
var app = AtelierServer.Build([
    "--Atelier:Server:Urls=http://127.0.0.1:0", $"--Atelier:Server:DataDirectory={Path.Combine(folder, "data")}",
    "--Atelier:Database:Provider=sqlite", $"--Atelier:Database:ConnectionString=Data Source={Path.Combine(folder, "atelier.db")}",
    $"--Atelier:Auth:BootstrapAdminKey={admin}", "--Atelier:Embedded:DemoTenant=false", "--Atelier:Embedded:LocalWorker=false",
    $"--Atelier:Tenancy:DefaultsFile={Path.Combine(root, "src", "Atelier", "defaults", "tenant-defaults.json")}",
    "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.EntityFrameworkCore=None",
    "--Atelier:Functions:LocalStopGraceSeconds=2",
    // The benchmark is the whole load: the rate limits stay in the path but never refuse.
    "--Atelier:RateLimits:PerCredential:TokenLimit=1000000000", "--Atelier:RateLimits:PerCredential:TokensPerPeriod=1000000000",
    "--Atelier:RateLimits:PerTenant:TokenLimit=1000000000", "--Atelier:RateLimits:PerTenant:TokensPerPeriod=1000000000",
]);
await app.StartAsync();
var baseUri = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
var lines = new List<string>();
try
{
    using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256, UseProxy = false }) { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(60) };
    using var direct = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256, UseProxy = false }) { Timeout = TimeSpan.FromSeconds(60) };
    var (tenantAdmin, appToken) = await TenantAsync(http);
    const string Svc = "bench";
    await Send(http, HttpMethod.Post, "/api/v1/services", tenantAdmin, new { name = Svc });
    var templates = (await Send(http, HttpMethod.Get, "/api/v1/platform/function-templates", tenantAdmin, null)).GetProperty("data");
    var template = (templates.ValueKind == JsonValueKind.Array ? templates : templates.GetProperty("items")).EnumerateArray()
        .First(t => t.GetProperty("name").GetString() == "a1111-engine");
    var engineCommand = template.GetProperty("command").GetString()!;
    var engineArgs = template.GetProperty("args").EnumerateArray().Select(a => a.GetString()!.Replace("{{modelsDirectory}}", models, StringComparison.Ordinal)).ToArray();
    Console.WriteLine($"a1111-engine: {engineCommand} {string.Join(' ', engineArgs)}");

    object Open(string name, string cmd, string[] cmdArgs, string health, int concurrency, int timeout, int idle) => new
    {
        name, command = cmd, args = cmdArgs, environment = new Dictionary<string, string>(), healthPath = health,
        instanceConcurrency = concurrency, timeoutSeconds = timeout, idleSeconds = idle,
    };

    async Task CreateAsync(object body, int? reserved = null)
    {
        await Send(http, HttpMethod.Post, $"/api/v1/services/{Svc}/functions", tenantAdmin, body);
        if (reserved is { } r)
        {
            var name = (string)body.GetType().GetProperty("name")!.GetValue(body)!;
            await Send(http, HttpMethod.Put, $"/api/v1/services/{Svc}/functions/{name}/concurrency-config", tenantAdmin, new { reservedConcurrency = r });
        }
    }

    async Task<int> InstancesAsync(string name)
    {
        var list = (await Send(http, HttpMethod.Get, $"/api/v1/services/{Svc}/functions?pageSize=100", tenantAdmin, null)).GetProperty("data").GetProperty("items");
        return list.EnumerateArray().First(f => f.GetProperty("name").GetString() == name).GetProperty("runtime").GetProperty("instances").GetInt32();
    }

    async Task<double> WaitZeroAsync(string name, TimeSpan max)
    {
        var watch = Stopwatch.StartNew();
        while (await InstancesAsync(name) > 0)
        {
            if (watch.Elapsed > max)
            {
                throw new TimeoutException($"{name} still has instances after {max.TotalSeconds} s");
            }

            await Task.Delay(100);
        }

        return watch.Elapsed.TotalSeconds;
    }

    // ---- the instance programs' own start, as the reference for the cold start: process start → first 2xx
    async Task<(Process Process, int Port, double Ms)> StartDirectAsync(string file, string[] extra, string health, bool portArg)
    {
        var port = FreePort();
        var info = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(file);
        foreach (var a in extra)
        {
            info.ArgumentList.Add(a);
        }

        if (portArg)
        {
            info.ArgumentList.Add("--urls");
            info.ArgumentList.Add($"http://127.0.0.1:{port}");
            info.ArgumentList.Add("--models");
            info.ArgumentList.Add(models);
        }

        info.Environment["PORT"] = port.ToString(CultureInfo.InvariantCulture);
        var watch = Stopwatch.StartNew();
        var p = Process.Start(info)!;
        started.Add(p);
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        while (true)
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(60) || p.HasExited)
            {
                throw new InvalidOperationException($"{file} did not answer {health} on {port}");
            }

            try
            {
                using var r = await probe.GetAsync(new Uri($"http://127.0.0.1:{port}{health}"));
                if (r.IsSuccessStatusCode)
                {
                    return (p, port, watch.Elapsed.TotalMilliseconds);
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(5);
        }
    }

    async Task StopDirectAsync(Process p)
    {
        p.Kill(entireProcessTree: true);
        await p.WaitForExitAsync();
        started.Remove(p);
        p.Dispose();
    }

    var loadAverage = File.ReadAllText("/proc/loadavg").Split(' ')[0];
    var engineStarts = new List<double>();
    var instanceStarts = new List<double>();
    for (var i = 0; i < 3; i++)
    {
        var t = await StartDirectAsync(testInstance, [], "/health", portArg: false);
        instanceStarts.Add(t.Ms);
        await StopDirectAsync(t.Process);
    }

    Console.WriteLine($"direct start: test instance {F(Median(instanceStarts), "0")} ms");

    // ---- 1. router overhead
    // One instance serves every request on either side: the functions take 16 requests at once and may run one instance.
    await CreateAsync(Open("hello", dotnet, [testInstance], "/health", 16, 30, 600), reserved: 1);
    await CreateAsync(Open("engine8", engineCommand, engineArgs, "/sdapi/v1/options", 16, 60, 600), reserved: 1);
    await Send(http, HttpMethod.Post, $"/api/v1/services/{Svc}/functions/by-template", tenantAdmin,
        new { name = "engine", templateId = template.GetProperty("id").GetString(), instanceParameters = new { modelsDirectory = models } });
    var directInstance = await StartDirectAsync(testInstance, [], "/health", portArg: false);
    var directEngine = await StartDirectAsync(atelierDll, ["engine"], "/sdapi/v1/options", portArg: true);
    var instanceUri = new Uri($"http://127.0.0.1:{directInstance.Port}");
    var engineUri = new Uri($"http://127.0.0.1:{directEngine.Port}");
    var txt2img = JsonSerializer.Serialize(new { prompt = "x", steps = 4, width = 64, height = 64 });

    var overhead = new List<(string Name, int Concurrency, Stats Router, Stats Direct)>();
    async Task PairAsync(string name, string routerPath, Uri directBase, string directPath, int concurrency, int count, int warm, string? body = null)
    {
        var method = body is null ? HttpMethod.Get : HttpMethod.Post;
        var viaRouter = new Uri(baseUri, routerPath);
        var straight = new Uri(directBase, directPath);
        await LoadAsync(http, method, viaRouter, appToken, body, concurrency, warm);
        await LoadAsync(direct, method, straight, null, body, concurrency, warm);
        // Two rounds each, alternating which side goes first.
        var r1 = await LoadAsync(http, method, viaRouter, appToken, body, concurrency, count / 2);
        var d1 = await LoadAsync(direct, method, straight, null, body, concurrency, count / 2);
        var d2 = await LoadAsync(direct, method, straight, null, body, concurrency, count / 2);
        var r2 = await LoadAsync(http, method, viaRouter, appToken, body, concurrency, count / 2);
        var router = Stats.Merge(r1, r2);
        var straightStats = Stats.Merge(d1, d2);
        overhead.Add((name, concurrency, router, straightStats));
        Console.WriteLine($"{name} c={concurrency}: router p50 {F(router.P50, "0.000")} p99 {F(router.P99, "0.000")} ms {F(router.Rps, "0")}/s cpu {F(router.CpuMs, "0.000")} ms/req; " +
            $"direct p50 {F(straightStats.P50, "0.000")} p99 {F(straightStats.P99, "0.000")} ms {F(straightStats.Rps, "0")}/s cpu {F(straightStats.CpuMs, "0.000")} ms/req; failures {router.Failures}/{straightStats.Failures}");
    }

    await PairAsync("test instance `GET /`", $"/fn/{Svc}/hello/", instanceUri, "/", 1, 3000, 300);
    await PairAsync("test instance `GET /`", $"/fn/{Svc}/hello/", instanceUri, "/", 8, 3000, 300);
    await PairAsync("a1111-engine `GET /sdapi/v1/options`", $"/fn/{Svc}/engine/sdapi/v1/options", engineUri, "/sdapi/v1/options", 1, 3000, 300);
    await PairAsync("a1111-engine `GET /sdapi/v1/options`", $"/fn/{Svc}/engine8/sdapi/v1/options", engineUri, "/sdapi/v1/options", 8, 3000, 300);
    await PairAsync("a1111-engine `POST /sdapi/v1/txt2img` (demo model, 64×64, 4 steps)", $"/fn/{Svc}/engine/sdapi/v1/txt2img", engineUri, "/sdapi/v1/txt2img", 1, 50, 10, txt2img);
    await StopDirectAsync(directInstance.Process);
    await StopDirectAsync(directEngine.Process);
    await Send(http, HttpMethod.Delete, $"/api/v1/services/{Svc}/functions/hello", tenantAdmin, null);
    await Send(http, HttpMethod.Delete, $"/api/v1/services/{Svc}/functions/engine8", tenantAdmin, null);
    await Send(http, HttpMethod.Delete, $"/api/v1/services/{Svc}/functions/engine/by-template", tenantAdmin, null);

    // ---- 2. cold start: the template's command as an open function with a one-second idle window
    await CreateAsync(Open("cold", engineCommand, engineArgs, "/sdapi/v1/options", 1, 60, 1));
    var coldUri = new Uri(baseUri, $"/fn/{Svc}/cold/sdapi/v1/options");
    var cold = new List<double>();
    var warmed = new List<double>();
    var toZero = new List<double>();
    for (var i = 0; i < 5; i++)
    {
        toZero.Add(await WaitZeroAsync("cold", TimeSpan.FromSeconds(30)));
        cold.Add(await TimedAsync(http, HttpMethod.Get, coldUri, appToken, null));
        var w = new List<double>();
        for (var k = 0; k < 5; k++)
        {
            w.Add(await TimedAsync(http, HttpMethod.Get, coldUri, appToken, null));
        }

        warmed.Add(Median(w));
        // The reference in the same round: the engine started by hand, the same program and models folder.
        var e = await StartDirectAsync(atelierDll, ["engine"], "/sdapi/v1/options", portArg: true);
        engineStarts.Add(e.Ms);
        await StopDirectAsync(e.Process);
        Console.WriteLine($"cold {F(cold[^1], "0")} ms, warm {F(warmed[^1], "0.00")} ms, by hand {F(e.Ms, "0")} ms (zero after {F(toZero[^1], "0.0")} s)");
    }

    await Send(http, HttpMethod.Delete, $"/api/v1/services/{Svc}/functions/cold", tenantAdmin, null);

    // ---- 3. step load: 0 → 64 clients for 10 s → 0
    await CreateAsync(Open("step", dotnet, [testInstance], "/health", 4, 10, 2), reserved: 8);
    await WaitZeroAsync("step", TimeSpan.FromSeconds(30));
    var stepUri = new Uri(baseUri, $"/fn/{Svc}/step/slow?ms=200");
    long sent = 0, ok = 0, busy = 0, busyRetry = 0, other = 0, noAnswer = 0, inFlight = 0;
    var otherCodes = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
    var samples = new List<(double T, int Instances, long InFlight, long Ok, long Busy)>();
    var load = Stopwatch.StartNew();
    var loadSeconds = 10.0;
    var loadDone = false;
    var firstOk = 0.0;
    using var stepClient = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256, UseProxy = false }) { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
    var sampler = Task.Run(async () =>
    {
        var next = 0.0;
        double? doneAt = null;
        while (true)
        {
            var wait = next - load.Elapsed.TotalSeconds;
            if (wait > 0)
            {
                await Task.Delay(TimeSpan.FromSeconds(wait));
            }

            var t = load.Elapsed.TotalSeconds;
            var instances = await InstancesAsync("step");
            samples.Add((t, instances, Interlocked.Read(ref inFlight), Interlocked.Read(ref ok), Interlocked.Read(ref busy)));
            if (Volatile.Read(ref loadDone))
            {
                doneAt ??= t;
                if (instances == 0 || t - doneAt > 12)
                {
                    return;
                }
            }

            next += 0.5;
        }
    });
    var clients = Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
    {
        while (load.Elapsed.TotalSeconds < loadSeconds)
        {
            Interlocked.Increment(ref sent);
            Interlocked.Increment(ref inFlight);
            try
            {
                using var req = new HttpRequestMessage(HttpMethod.Get, stepUri);
                req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", appToken);
                using var r = await stepClient.SendAsync(req);
                await r.Content.ReadAsByteArrayAsync();
                if (r.StatusCode == HttpStatusCode.OK)
                {
                    if (Interlocked.Increment(ref ok) == 1)
                    {
                        firstOk = load.Elapsed.TotalSeconds;
                    }

                }
                else if (r.StatusCode == HttpStatusCode.ServiceUnavailable)
                {
                    Interlocked.Increment(ref busy);
                    if (r.Headers.RetryAfter is not null)
                    {
                        Interlocked.Increment(ref busyRetry);
                    }
                }
                else
                {
                    Interlocked.Increment(ref other);
                    otherCodes.AddOrUpdate((int)r.StatusCode, 1, (_, n) => n + 1);
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                Interlocked.Increment(ref noAnswer);
            }
            finally
            {
                Interlocked.Decrement(ref inFlight);
            }
        }
    })).ToList();
    await Task.WhenAll(clients);
    var loadEnded = load.Elapsed.TotalSeconds;
    Volatile.Write(ref loadDone, true);
    await sampler;
    var answered = ok + busy + other;
    Console.WriteLine($"step: sent {sent}, 200 {ok}, 503 {busy} ({busyRetry} with Retry-After), other {other}, no answer {noAnswer}; max instances {samples.Max(s => s.Instances)}");
    await Send(http, HttpMethod.Delete, $"/api/v1/services/{Svc}/functions/step", tenantAdmin, null);

    Report();

    void Report()
    {
        var cpuModel = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        var memKb = long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        string Verdict(bool met) => met ? "met" : "**missed**";
        var rows = overhead.Select(o =>
        {
            var added = o.Router.P50 - o.Direct.P50;
            var ratio = o.Router.Rps / o.Direct.Rps;
            return $"| {o.Name} | {o.Concurrency} | {F(o.Direct.P50, "0.000")} / {F(o.Direct.P99, "0.000")} ms | {F(o.Router.P50, "0.000")} / {F(o.Router.P99, "0.000")} ms | " +
                $"**{F(added, "+0.000;-0.000")} ms** ({Verdict(added <= 1)}) | {F(o.Direct.Rps, "0")} | {F(o.Router.Rps, "0")} | **{F(ratio * 100, "0")}%** ({Verdict(ratio >= 0.7)}) | " +
                $"{F(o.Direct.CpuMs, "0.000")} → {F(o.Router.CpuMs, "0.000")} ms (+{F(o.Router.CpuMs - o.Direct.CpuMs, "0.000")}) | {o.Router.Count}{(o.Router.Failures + o.Direct.Failures > 0 ? $", {o.Router.Failures + o.Direct.Failures} failed" : "")} |";
        });
        var coldAdded = Median(cold) - Median(warmed);
        var table = new List<string>();
        foreach (var s in samples)
        {
            table.Add($"| {F(s.T, "0.0")} | {s.Instances} | {s.InFlight} | {s.Ok} | {s.Busy} |");
        }

        var maxInstances = samples.Max(s => s.Instances);
        var otherText = otherCodes.IsEmpty ? "" : " (" + string.Join(", ", otherCodes.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}: {kv.Value}")) + ")";
        var section = $"""
            <!-- functions:begin -->
            ## Functions: router overhead, cold start, step load (issue 14)

            Measured {DateTime.UtcNow:yyyy-MM-dd} on {Environment.ProcessorCount} cores ({cpuModel}), {F(memKb / 1024.0 / 1024.0, "0")} GiB, .NET {Environment.Version},
            SQLite, local backend, with `{command}` ({F(overall.Elapsed.TotalSeconds, "0")} s in all). The server runs in the benchmark's process
            (`AtelierServer.Build`), the clients too; instances are child processes; everything shares these cores, over loopback.
            The machine is shared with other work (1-minute load average {loadAverage} at the start), so expect noise of tens of percent.

            **Router overhead** — the same request through `/fn/{Svc}/<function>/…` (app token; authentication, function lookup,
            instance slot, YARP forward) and straight to a copy of the same program that the benchmark started itself on a port
            of its own (`PORT=` for the test instance, `dotnet atelier.dll engine --urls … --models …` for the engine, same models
            folder). Each function may run one instance (`reservedConcurrency` 1) that takes 16 requests at once, so both sides
            talk to one process; `a1111-engine` by template (instance concurrency 1) for the sequential rows, an open function
            with the template's command and instance concurrency 16 for the 8-client row. Warm-up of 300 requests (10 for
            txt2img) on each side, then 2 × half the count per side, alternating which side goes first; p50 / p99 over all of it.
            CPU per request is this whole process (server and clients) — on the direct side the clients only — so the
            difference is the router's cost; the instances' own CPU is not counted on either side.

            | request | clients | direct p50 / p99 | router p50 / p99 | added at p50 (target ≤ 1 ms) | direct req/s | router req/s | router / direct (target ≥ 70%) | CPU per request, direct → router | requests per side |
            |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
            {string.Join("\n", rows)}

            {OverheadNote()}

            **Cold start** — `a1111-engine`'s command and arguments (from `GET /api/v1/platform/function-templates`, the models
            folder filled in) as an open function with `idleSeconds: 1`; the benchmark waits until the list API says
            `runtime.instances == 0` (the idle check runs every 5 s: {F(Median(toZero), "0.0")} s median wait), then times
            `GET /sdapi/v1/options` through the router, then the same request 5 times warm, then starts the engine by hand
            as the reference (same program, same models folder). 5 rounds.

            | measure | p50 | all |
            |---|---:|---|
            | cold: request at zero instances → answer | {F(Median(cold), "0")} ms | {string.Join(", ", cold.Select(c => F(c, "0")))} ms |
            | warm: the same request, an instance ready | {F(Median(warmed), "0.00")} ms | {string.Join(", ", warmed.Select(c => F(c, "0.00")))} ms |
            | **added by the cold start** (cold − warm) | **{F(coldAdded, "0")} ms** (target ≤ 1500 ms: {Verdict(coldAdded <= 1500)}) | |
            | of which the router's own share (cold − engine started by hand) | {F(Median(cold) - Median(engineStarts), "0")} ms | |
            | reference: `dotnet atelier.dll engine` started by hand → its `/sdapi/v1/options` answers (polled every 5 ms), same rounds | {F(Median(engineStarts), "0")} ms | {string.Join(", ", engineStarts.Select(c => F(c, "0")))} ms |
            | reference: the test instance (a bare ASP.NET Core program) → `/health` answers | {F(Median(instanceStarts), "0")} ms | {string.Join(", ", instanceStarts.Select(c => F(c, "0")))} ms |

            {ColdNote(coldAdded)}

            **Step load** — a function running the test instance (`GET /slow?ms=200`), instance concurrency 4,
            `reservedConcurrency` 8 (at most 8 instances, 32 requests at once), `timeoutSeconds` 10, `idleSeconds` 2, at zero
            instances; 64 clients each send one request after another for {F(loadSeconds, "0")} s (the first 200 came at
            {F(firstOk, "0.0")} s, the last answers at {F(loadEnded, "0.0")} s), then none. Every 500 ms: the instance count from the list API and the requests in flight.

            | t (s) | instances | in flight | 200 so far | 503 so far |
            |---:|---:|---:|---:|---:|
            {string.Join("\n", table)}

            | total | value |
            |---|---:|
            | sent | {sent} |
            | answered | {answered} |
            | 200 | {ok} |
            | 503 (with `Retry-After`) | {busy} ({busyRetry}) |
            | other status | {other}{otherText} |
            | **lost** (sent − answered: no answer at all) | **{sent - answered}** ({Verdict(sent == answered)}) |
            | **most instances seen** | **{maxInstances}** (≤ 8: {Verdict(maxInstances <= 8)}) |

            {StepNote(maxInstances)}
            <!-- functions:end -->
            """;
        var path = Path.Combine(root, "docs", "benchmarks.md");
        var text = File.ReadAllText(path);
        var start = text.IndexOf("<!-- functions:begin -->", StringComparison.Ordinal);
        var end = text.IndexOf("<!-- functions:end -->", StringComparison.Ordinal);
        text = start >= 0 && end > start
            ? text[..start] + section.Trim() + text[(end + "<!-- functions:end -->".Length)..]
            : text.TrimEnd() + "\n\n" + section.Trim() + "\n";
        File.WriteAllText(path, text);
        Console.WriteLine($"written to {path}");
    }

    string OverheadNote()
    {
        var missed = overhead.Where(o => o.Router.P50 - o.Direct.P50 > 1 || o.Router.Rps / o.Direct.Rps < 0.7).Select(o => $"{o.Name} with {o.Concurrency} client{(o.Concurrency > 1 ? "s" : "")}").ToList();
        return missed.Count == 0
            ? "Both targets are met on every row."
            : $"Missed on: {string.Join("; ", missed)}. " +
              "The direct side is one small Kestrel program answering on loopback in a fraction of a millisecond; through the " +
              "router every request also crosses the server's own Kestrel and middleware (request id, rate limits, token check, " +
              "tenant check), then `FunctionRouting.FindAsync` reads the service and the function from the database, " +
              "`RuntimeRegions.ResolveAsync` reads the region, the function's config JSON is parsed, and only then is an instance " +
              "slot taken and the request forwarded over a second loopback connection. Those three uncached reads per request are " +
              "most of the router's CPU per request (last columns), and on these shared cores CPU is what caps its throughput. " +
              "Caching the route (service, function, region, parsed config) with invalidation on update would take most of it " +
              "away; not done here (product code). A request that does real work (txt2img) hides less of the fixed cost than " +
              "one would hope because the demo model's txt2img takes under 2 ms.";
    }

    string ColdNote(double added) =>
        (added <= 1500 ? "The target is met. " : "The target is **missed**. ") +
        "A cold request pays: the `dotnet` host starting `atelier.dll` (runtime start, JIT of the host builder and the " +
        "engine's startup), the engine loading the demo model, and the health poll — the backend probes the health path " +
        "after 50 ms, then 100, 200, 400 and every 500 ms, so up to 500 ms can pass between the engine being ready and " +
        "the router knowing it. Compare the cold figure with the hand-started reference: the difference is the router's " +
        "own share (the poll interval and the start bookkeeping).";

    string StepNote(int maxInstances) =>
        (maxInstances <= 8 ? "The cap held" : "**The cap did not hold**") +
        (sent == answered ? " and no request was lost. " : $" and {sent - answered} requests got no answer. ") +
        "The 64 waiting requests at zero make the backend start every instance they need at once (64 / 4 = 16, capped at 8): " +
        "eight `dotnet` processes starting together on these cores is why the first answer takes seconds, several times " +
        "one instance's start. Requests beyond the free slots wait in the router's queue (up to the 10 s timeout) meanwhile, " +
        "so a 503 with `Retry-After` only comes to a request that waits longer than that; once up, the 8 instances serve " +
        "32 requests at a time (200 ms each: at most 160 requests/s). They stop again once idle for 2 s (the idle check runs every 5 s).";
}
finally
{
    foreach (var p in started)
    {
        try
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
        }

        p.Dispose();
    }

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

// ---- helpers
async Task<Stats> LoadAsync(HttpClient client, HttpMethod method, Uri uri, string? bearer, string? body, int concurrency, int count)
{
    var latencies = new double[count];
    var next = -1;
    var failures = 0;
    self.Refresh();
    var cpu = self.TotalProcessorTime;
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
    {
        int i;
        while ((i = Interlocked.Increment(ref next)) < count)
        {
            var t = Stopwatch.GetTimestamp();
            using var req = new HttpRequestMessage(method, uri);
            if (bearer is not null)
            {
                req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            }

            if (body is not null)
            {
                req.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
            }

            using var r = await client.SendAsync(req);
            await r.Content.ReadAsByteArrayAsync();
            if (!r.IsSuccessStatusCode)
            {
                Interlocked.Increment(ref failures);
            }

            latencies[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        }
    })));
    var seconds = clock.Elapsed.TotalSeconds;
    self.Refresh();
    var cpuMs = (self.TotalProcessorTime - cpu).TotalMilliseconds;
    return new Stats([.. latencies], seconds, cpuMs, failures);
}

async Task<double> TimedAsync(HttpClient client, HttpMethod method, Uri uri, string? bearer, string? body)
{
    var watch = Stopwatch.StartNew();
    using var req = new HttpRequestMessage(method, uri);
    if (bearer is not null)
    {
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
    }

    if (body is not null)
    {
        req.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
    }

    using var r = await client.SendAsync(req);
    var text = await r.Content.ReadAsStringAsync();
    if (!r.IsSuccessStatusCode)
    {
        throw new InvalidOperationException($"{uri}: {(int)r.StatusCode} {text}");
    }

    return watch.Elapsed.TotalMilliseconds;
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

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

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

/// <summary>One side of one load run: every latency (ms), the wall time, this process's CPU time, the non-2xx answers.</summary>
internal sealed record Stats(double[] Latencies, double Seconds, double CpuTotalMs, int Failures)
{
    public int Count => Latencies.Length;

    public double Rps => Count / Seconds;

    public double CpuMs => CpuTotalMs / Count;

    public double P50 => Percentile(0.5);

    public double P99 => Percentile(0.99);

    public static Stats Merge(Stats a, Stats b) => new([.. a.Latencies, .. b.Latencies], a.Seconds + b.Seconds, a.CpuTotalMs + b.CpuTotalMs, a.Failures + b.Failures);

    private double Percentile(double q)
    {
        var sorted = Latencies.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * q))];
    }
}
