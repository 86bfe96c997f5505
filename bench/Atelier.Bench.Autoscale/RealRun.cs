using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;

namespace Atelier.Bench.Autoscale;

/// <summary>One job of the run, as the server reports it (server clock; the bench runs on the same machine).</summary>
internal sealed record JobTimes(string Id, DateTime CreatedAt, DateTime? StartedAt, DateTime? FinishedAt, string State);

/// <summary>One look at the unit: seconds since the burst was sent, replicas asked for, replicas ready, the agent's queue, jobs done.</summary>
internal sealed record Sample(double T, int Replicas, int Ready, int Queued, int Running, int Done);

/// <summary>A decision of the autoscaler as the scaling endpoint lists it.</summary>
internal sealed record Decision(DateTime At, int From, int To, int Queued, int Running, string Reason);

/// <summary>A single job on a unit at zero: when it was submitted, when the autoscaler asked for a replica, when the job was leased.</summary>
internal sealed record ColdRound(DateTime Submitted, DateTime UpAt, DateTime StartedAt, DateTime FinishedAt)
{
    public double TickWaitMs => (UpAt - Submitted).TotalMilliseconds;

    public double ColdStartMs => (StartedAt - UpAt).TotalMilliseconds;

    public double SubmitToLeaseMs => (StartedAt - Submitted).TotalMilliseconds;

    public double RunMs => (FinishedAt - StartedAt).TotalMilliseconds;
}

internal sealed record RealResult(
    int Capacity, int Slots, object Template, string Engine, List<ColdRound> Cold, int Jobs, DateTime Sent, double SubmitSpanMs, List<JobTimes> Burst,
    List<Sample> Samples, List<Decision> Decisions, double BackToZeroS)
{
    public double FirstLeaseS => (Burst.Where(j => j.StartedAt is not null).Min(j => j.StartedAt!.Value) - Sent).TotalSeconds;

    public double AllDoneS => (Burst.Max(j => j.FinishedAt ?? DateTime.MaxValue) - Sent).TotalSeconds;

    public List<double> RunMs => [.. Burst.Where(j => j is { StartedAt: not null, FinishedAt: not null }).Select(j => (j.FinishedAt!.Value - j.StartedAt!.Value).TotalMilliseconds)];

    public List<double> WaitMs => [.. Burst.Where(j => j.StartedAt is not null).Select(j => (j.StartedAt!.Value - j.CreatedAt).TotalMilliseconds)];
}

/// <summary>
/// A real <c>atelier serve</c> (its own process, loopback, a temp data folder, SQLite, the autoscaler every second, no
/// embedded worker): a unit on the local backend at 0 replicas, a few single jobs (the cold start of one replica), then
/// a burst of jobs at once, sampled until the unit is back at zero. Bounded: every wait has a deadline, the server is
/// stopped (SIGTERM, then killed) whatever happens.
/// </summary>
internal sealed class RealRun(string root, string atelierDll, TextWriter log)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public const int Capacity = 4;
    public const int Slots = 4;
    public const string Engine = "noop=500";
    public const int ColdRounds = 3;

    // The unit's template: every slot busy, up at once, down after 2 s, to zero after 3 s idle.
    public static readonly object Template = new
    {
        name = "bench", minReplicas = 0, maxReplicas = Capacity, targetBusySlots = (double)Slots, scaleUpWindowSeconds = 0, scaleDownWindowSeconds = 2,
        idleSecondsBeforeZero = 3,
    };

    public async Task<RealResult> RunAsync(int jobs)
    {
        var folder = Directory.CreateTempSubdirectory("atelier-bench-autoscale-").FullName;
        var port = FreePort();
        var admin = Atelier.Core.Security.Secrets.Issue(Atelier.Core.Security.Secrets.PlatformKeyPrefix);
        var serverLog = Path.Combine(folder, "serve.log");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = folder,
        };
        foreach (var a in new[]
                 {
                     atelierDll, "serve", "--urls", $"http://127.0.0.1:{port}", "--data", Path.Combine(folder, "data"),
                     "--Atelier:Agents:ScaleIntervalSeconds=1", "--Atelier:Embedded:LocalWorker=false", "--Atelier:Embedded:DemoTenant=false",
                     $"--Atelier:Auth:BootstrapAdminKey={admin}", "--Atelier:Functions:LocalStopGraceSeconds=2",
                     $"--Atelier:Tenancy:DefaultsFile={Path.Combine(root, "src", "Atelier", "defaults", "tenant-defaults.json")}",
                     "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Atelier.Core.Agents=Information",
                 })
        {
            start.ArgumentList.Add(a);
        }

        using var server = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
        var output = new StreamWriter(serverLog) { AutoFlush = true };
        var gate = new object();
        server.OutputDataReceived += (_, e) =>
        {
            lock (gate)
            {
                output.WriteLine(e.Data);
            }
        };
        server.ErrorDataReceived += (_, e) =>
        {
            lock (gate)
            {
                output.WriteLine(e.Data);
            }
        };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        log.WriteLine($"atelier serve: pid {server.Id}, http://127.0.0.1:{port}, data in {folder}");
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(60) };
            await WaitAsync(async () =>
            {
                if (server.HasExited)
                {
                    throw new InvalidOperationException($"atelier serve exited with {server.ExitCode}: {Tail(serverLog)}");
                }

                try
                {
                    using var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
                    return r.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(90), "the server to answer /healthz");

            var (tenant, tenantAdmin, app) = await TenantAsync(http, admin);
            var pool = Id(await SendAsync(http, HttpMethod.Post, "/api/v1/platform/computing-pools", admin, new
            {
                name = "bench", tenantIds = new[] { tenant },
                regions = new[] { new { region = "local", instanceTypes = new[] { new { name = "cpu", capacity = Capacity, slotsPerReplica = Slots } } } },
            }));
            var template = Id(await SendAsync(http, HttpMethod.Post, "/api/v1/scale-templates", tenantAdmin, Template));
            var agent = Id(await SendAsync(http, HttpMethod.Post, "/api/v1/agents", tenantAdmin, new { name = "painters" }));
            var version = Id(await SendAsync(http, HttpMethod.Post, $"/api/v1/agents/{agent}/versions", tenantAdmin,
                new { versionName = "v1", image = "atelier/atelier:bench", engine = Engine, autoScaleTemplateId = template }));
            var unit = Id(await SendAsync(http, HttpMethod.Post, $"/api/v1/agents/{agent}/units", tenantAdmin,
                new { agentVersionId = version, computingPoolId = pool, region = "local", instanceType = "cpu", replicas = 0, autoscale = true }));
            var scalingPath = $"/api/v1/agents/{agent}/units/{unit}/scaling";
            var jobsPath = $"/api/v1/agents/{agent}/jobs";
            var input = new { input = new { prompt = "a lighthouse at dusk", steps = 2, width = 64, height = 64 } };

            // ---- the cold start of one replica: one job at zero, from its submit to its lease, a few times
            var cold = new List<ColdRound>();
            for (var round = 0; round < ColdRounds; round++)
            {
                var id = Id(await SendAsync(http, HttpMethod.Post, jobsPath, app, input));
                var job = await WaitForAsync(async () => await JobAsync(http, app, $"{jobsPath}/{id}"), j => j.State is "succeeded" or "failed", TimeSpan.FromSeconds(90),
                    $"single job {round + 1} to finish");
                if (job.State != "succeeded")
                {
                    throw new InvalidOperationException($"job {id} {job.State}: {Tail(serverLog)}");
                }

                var scaling = await SendAsync(http, HttpMethod.Get, scalingPath, tenantAdmin, null);
                var up = Decisions(scaling).Where(d => d.From == 0 && d.To > 0 && d.At >= job.CreatedAt.AddSeconds(-1)).OrderBy(d => d.At).FirstOrDefault()
                         ?? throw new InvalidOperationException($"no decision up from zero after {job.CreatedAt:O}: {scaling}");
                cold.Add(new ColdRound(job.CreatedAt, up.At, job.StartedAt!.Value, job.FinishedAt!.Value));
                log.WriteLine($"single job {round + 1}: submit -> up decision {cold[^1].TickWaitMs:0} ms, up decision -> lease {cold[^1].ColdStartMs:0} ms");
                await WaitForAsync(async () => await SendAsync(http, HttpMethod.Get, scalingPath, tenantAdmin, null),
                    s => s.GetProperty("replicas").GetInt32() == 0 && (s.GetProperty("readyReplicas").ValueKind != JsonValueKind.Number || s.GetProperty("readyReplicas").GetInt32() == 0),
                    TimeSpan.FromSeconds(60), "the unit to go back to zero");
            }

            // ---- the burst: jobs at once, the unit sampled every 250 ms until every job is done and the unit is back at zero
            var samples = new List<Sample>();
            var ids = new HashSet<string>();
            var sent = DateTime.UtcNow;
            var clock = Stopwatch.StartNew();
            var submits = await Task.WhenAll(Enumerable.Range(0, jobs).Select(_ => SendAsync(http, HttpMethod.Post, jobsPath, app, input)));
            var submitSpan = clock.Elapsed.TotalMilliseconds;
            foreach (var s in submits)
            {
                ids.Add(Id(s));
            }

            var burst = new List<JobTimes>();
            double backToZero = double.NaN;
            var deadline = TimeSpan.FromSeconds(180);
            while (true)
            {
                var scaling = await SendAsync(http, HttpMethod.Get, scalingPath, tenantAdmin, null);
                var t = (DateTime.UtcNow - sent).TotalSeconds;
                burst = await BurstJobsAsync(http, app, jobsPath, ids);
                var done = burst.Count(j => j.State is "succeeded" or "failed" or "cancelled");
                var ready = scaling.GetProperty("readyReplicas").ValueKind == JsonValueKind.Number ? scaling.GetProperty("readyReplicas").GetInt32() : 0;
                var replicas = scaling.GetProperty("replicas").GetInt32();
                samples.Add(new Sample(t, replicas, ready, scaling.GetProperty("queued").GetInt32(), scaling.GetProperty("running").GetInt32(), done));
                if (done == jobs && replicas == 0 && ready == 0)
                {
                    backToZero = t;
                    break;
                }

                if (clock.Elapsed > deadline)
                {
                    log.WriteLine($"the burst did not finish within {deadline.TotalSeconds} s ({done} of {jobs} done, {replicas} replicas): stopping");
                    break;
                }

                await Task.Delay(250);
            }

            var failed = burst.Where(j => j.State != "succeeded").ToList();
            if (failed.Count > 0)
            {
                throw new InvalidOperationException($"{failed.Count} jobs of the burst did not succeed ({string.Join(", ", failed.Select(j => j.State).Distinct())}): {Tail(serverLog)}");
            }

            var last = await SendAsync(http, HttpMethod.Get, scalingPath, tenantAdmin, null);
            var decisions = Decisions(last).Where(d => d.At >= sent).OrderBy(d => d.At).ToList();
            return new RealResult(Capacity, Slots, Template, Engine, cold, jobs, sent, submitSpan, burst, samples, decisions, backToZero);
        }
        finally
        {
            await StopAsync(server);
            lock (gate)
            {
                output.Dispose();
            }

            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private async Task StopAsync(Process server)
    {
        if (server.HasExited)
        {
            return;
        }

        // SIGTERM: the server stops its worker processes itself (the grace set above), then exits.
        using (var kill = Process.Start("kill", ["-TERM", server.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await server.WaitForExitAsync(wait.Token);
            log.WriteLine($"atelier serve stopped ({server.ExitCode})");
        }
        catch (OperationCanceledException)
        {
            log.WriteLine("atelier serve did not stop within 30 s of SIGTERM: killed with its children");
            server.Kill(entireProcessTree: true);
        }
    }

    private static async Task<List<JobTimes>> BurstJobsAsync(HttpClient http, string app, string jobsPath, HashSet<string> ids)
    {
        var list = new List<JobTimes>();
        for (var page = 1; page <= 10 && list.Count < ids.Count; page++)
        {
            var data = await SendAsync(http, HttpMethod.Get, $"{jobsPath}?pageNumber={page}&pageSize=100", app, null);
            var items = data.GetProperty("items");
            foreach (var item in items.EnumerateArray())
            {
                var job = ToJob(item);
                if (ids.Contains(job.Id))
                {
                    list.Add(job);
                }
            }

            if (items.GetArrayLength() < 100)
            {
                break;
            }
        }

        return list;
    }

    private static async Task<JobTimes> JobAsync(HttpClient http, string bearer, string path) => ToJob(await SendAsync(http, HttpMethod.Get, path, bearer, null));

    private static JobTimes ToJob(JsonElement j) =>
        new(j.GetProperty("id").GetString()!, j.GetProperty("createdAt").GetDateTime().ToUniversalTime(), Time(j, "startedAt"), Time(j, "finishedAt"),
            j.GetProperty("state").GetString()!);

    private static DateTime? Time(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetDateTime().ToUniversalTime() : null;

    private static List<Decision> Decisions(JsonElement scaling) =>
    [
        .. scaling.GetProperty("decisions").EnumerateArray().Select(d => new Decision(d.GetProperty("at").GetDateTime().ToUniversalTime(),
            d.GetProperty("from").GetInt32(), d.GetProperty("to").GetInt32(), d.GetProperty("queued").GetInt32(), d.GetProperty("running").GetInt32(),
            d.GetProperty("reason").GetString() ?? "")),
    ];

    private static async Task<(string Tenant, string Admin, string App)> TenantAsync(HttpClient http, string admin)
    {
        var uid = "bench-" + Guid.NewGuid().ToString("N")[..8];
        await SendAsync(http, HttpMethod.Post, "/api/v1/accounts", admin, new { uid, name = "Bench" });
        var tenant = Id(await SendAsync(http, HttpMethod.Post, "/api/v1/tenants", admin, new { accountUid = uid, name = "Bench" }));
        await SendAsync(http, HttpMethod.Post, $"/api/v1/tenants/{tenant}/init", admin, null);
        await SendAsync(http, HttpMethod.Post, $"/api/v1/tenants/{tenant}/activate", admin, null);
        var appId = Id(await SendAsync(http, HttpMethod.Post, "/api/v1/apps", admin, new { name = "bench" }, tenant));
        var adminToken = (await SendAsync(http, HttpMethod.Post, $"/api/v1/apps/{appId}/tokens", admin, new { name = "admin", scopes = new[] { "admin" } }, tenant))
            .GetProperty("secret").GetString()!;
        var appToken = (await SendAsync(http, HttpMethod.Post, $"/api/v1/apps/{appId}/tokens", admin, new { name = "backend", scopes = new[] { "app" } }, tenant))
            .GetProperty("secret").GetString()!;
        return (tenant, adminToken, appToken);
    }

    private static string Id(JsonElement data) => data.GetProperty("id").GetString()!;

    /// <summary>The <c>data</c> of the answer; anything but a 2xx is an error.</summary>
    private static async Task<JsonElement> SendAsync(HttpClient http, HttpMethod method, string path, string bearer, object? body, string? tenant = null)
    {
        using var req = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        req.Headers.Add("X-Operator-Id", "bench");
        if (tenant is not null)
        {
            req.Headers.Add("X-Tenant-Id", tenant);
        }

        if (body is not null)
        {
            req.Content = JsonContent.Create(body, options: Json);
        }

        using var r = await http.SendAsync(req);
        var text = await r.Content.ReadAsStringAsync();
        if (!r.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{method} {path}: {(int)r.StatusCode} {text}");
        }

        return r.StatusCode == HttpStatusCode.NoContent || text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.GetProperty("data").Clone();
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan limit, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > limit)
            {
                throw new TimeoutException($"waited {limit.TotalSeconds} s for {what}");
            }

            await Task.Delay(100);
        }
    }

    private static async Task<T> WaitForAsync<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan limit, string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }

            if (clock.Elapsed > limit)
            {
                throw new TimeoutException($"waited {limit.TotalSeconds} s for {what}; last: {value}");
            }

            await Task.Delay(100);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Tail(string file)
    {
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            var text = reader.ReadToEnd();
            return text.Length > 4000 ? text[^4000..] : text;
        }
        catch (IOException)
        {
            return "(no server log)";
        }
    }
}
