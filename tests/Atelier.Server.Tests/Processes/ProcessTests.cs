using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Processes;

/// <summary>The real executable, started as a process: first-start key, JSON logs with the request id.</summary>
public partial class ProcessTests
{
    [Fact]
    public async Task Serve_FirstStart_PrintsAdminKeyOnceAndLogsJsonWithRequestIds()
    {
        // The process runs on its embedded defaults (a SQLite file under its data folder), whichever database the suite targets.
        var folder = Directory.CreateTempSubdirectory("atelier-proc-").FullName;
        try
        {
            var (firstOut, key) = await RunOnceAsync(folder, async (baseUri, http, _) =>
            {
                var r = await http.GetAsync(new Uri(baseUri, "/api/v1/apps"));
                Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
                return r.Headers.GetValues("X-Request-Id").Single();
            }, "\"EventId\":1100");
            var printed = AdminKeyLine().Matches(firstOut);
            Assert.Single(printed);

            // The key works, and the second start prints no key at all.
            var (secondOut, _) = await RunOnceAsync(folder, async (baseUri, http, _) =>
            {
                using var req = new HttpRequestMessage(HttpMethod.Get, new Uri(baseUri, "/api/v1/accounts"));
                req.Headers.Authorization = new("Bearer", printed[0].Groups[1].Value);
                var r = await http.SendAsync(req);
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                return "";
            });
            Assert.DoesNotMatch(AdminKeyLine(), secondOut);
            Assert.DoesNotContain(printed[0].Groups[1].Value, secondOut, StringComparison.Ordinal);

            // Every other line is one JSON object; the failed request's log line carries its request id.
            var lines = firstOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Where(l => !l.StartsWith("Platform admin key", StringComparison.Ordinal) && !l.StartsWith("Demo tenant ready", StringComparison.Ordinal)
                            && !l.StartsWith("  curl ", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(lines);
            var events = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
            var failed = Assert.Single(events, e => e.GetProperty("EventId").GetInt32() == 1100);
            Assert.Contains(ErrorCatalog.p_common_apitokenrequired.Code, failed.GetProperty("Message").GetString(), StringComparison.Ordinal);
            Assert.Contains(key, failed.GetProperty("Scopes").GetRawText(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// The README's promise: <c>atelier serve</c> on its embedded defaults, then the one curl it prints, gives a PNG. The
    /// image is made by the local worker, a process of its own that the server started with the built-in engine.
    /// </summary>
    [Fact]
    public async Task Serve_BareStart_TheCurlItPrintsGivesAPng_FromItsLocalWorker()
    {
        var folder = Directory.CreateTempSubdirectory("atelier-proc-").FullName;
        try
        {
            var (output, _) = await RunOnceAsync(folder, async (baseUri, http, outputSoFar) =>
            {
                var token = await Eventually.ValueAsync(() => Task.FromResult(DemoTokenLine().Match(outputSoFar()).Groups[1].Value), t => t.Length > 0,
                    "the demo token was printed");
                using var req = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUri, "/sdapi/v1/txt2img"))
                {
                    Content = new StringContent("{\"prompt\":\"a lighthouse at dusk\",\"steps\":12}", System.Text.Encoding.UTF8, "application/json"),
                };
                req.Headers.Authorization = new("Bearer", token);
                req.Headers.Accept.ParseAdd("image/png");
                using var r = await http.SendAsync(req);
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                Assert.Equal("image/png", r.Content.Headers.ContentType?.MediaType);
                var png = await r.Content.ReadAsByteArrayAsync();
                Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, png[..4]);
                Assert.Contains("Steps: 12", Atelier.Engine.Images.Png.ReadText(png)["parameters"], StringComparison.Ordinal);
                return "";
            }, "registered: engine builtin", "Local worker started");
            // The worker is an instance of the local runtime: its own log lines reach the server's log with the instance id.
            Assert.Matches(@"\[local-worker\.latest\.[0-9a-f]+ stdout\].*Worker local-worker-[0-9a-f]+ registered: engine builtin", output);
            Assert.Matches(@"Local worker started \(pid [1-9][0-9]*\)", output);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// The local worker is an instance of the local runtime: revoking its key replaces it with one holding a fresh key
    /// (a new process), and the demo curl gives a PNG again.
    /// </summary>
    [Fact]
    public async Task Serve_LocalWorkerKeyRevoked_TheWorkerIsReplacedWithAFreshKey()
    {
        var folder = Directory.CreateTempSubdirectory("atelier-proc-").FullName;
        try
        {
            await RunOnceAsync(folder, async (baseUri, http, outputSoFar) =>
            {
                await Eventually.UntilAsync(() => StartedPids(outputSoFar()).Count == 1, "the local worker started");
                var adminKey = AdminKeyLine().Match(outputSoFar()).Groups[1].Value;
                var token = DemoTokenLine().Match(outputSoFar()).Groups[1].Value;
                var admin = new ApiClient(new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(60) }).With(adminKey, "op-proc");
                var key = (await admin.GetAsync("/api/v1/platform/worker-keys")).Ok().EnumerateArray()
                    .Single(k => k.GetProperty("id").GetString()!.StartsWith("wk_local_", StringComparison.Ordinal)).GetProperty("id").GetString()!;
                (await admin.PostAsync($"/api/v1/platform/worker-keys/{key}/revoke")).Ok();

                await Eventually.UntilAsync(() => StartedPids(outputSoFar()).Count == 2, "a new local worker started with a fresh key", TimeSpan.FromSeconds(120));
                var pids = StartedPids(outputSoFar());
                Assert.NotEqual(pids[0], pids[1]);
                using var req = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUri, "/sdapi/v1/txt2img"))
                {
                    Content = new StringContent("{\"prompt\":\"again\",\"steps\":2}", System.Text.Encoding.UTF8, "application/json"),
                };
                req.Headers.Authorization = new("Bearer", token);
                req.Headers.Accept.ParseAdd("image/png");
                using var r = await http.SendAsync(req);
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
                return "";
            });
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static List<string> StartedPids(string output) => [.. LocalWorkerStarted().Matches(output).Select(m => m.Groups[1].Value)];

    [GeneratedRegex(@"Local worker started \(pid (\d+)\)")]
    private static partial Regex LocalWorkerStarted();

    /// <summary>Starts <c>atelier serve</c> on a free port with the data folder given, runs one probe, stops it, returns its output.</summary>
    /// <param name="probe">Gets the server's address, a client and the output so far.</param>
    /// <param name="until">What the output must hold before the server is stopped (log lines of the probe that are still on their way).</param>
    private static async Task<(string Output, string ProbeResult)> RunOnceAsync(string folder, Func<Uri, HttpClient, Func<string>, Task<string>> probe,
        params string[] until)
    {
        await using var process = AtelierProcess.Start(folder, "serve",
            "--Atelier:Server:Urls=http://127.0.0.1:0", $"--Atelier:Server:DataDirectory={Path.Combine(folder, "data")}",
            "--Logging:LogLevel:Default=Information", "--Logging:LogLevel:Microsoft.EntityFrameworkCore=Warning");
        var baseUri = await process.ListeningAddressAsync(TimeSpan.FromSeconds(180)); // a deadline for a loaded machine, not a measure
        using var http = new HttpClient();
        var result = await probe(baseUri, http, () => process.Output);
        await Eventually.UntilAsync(() => until.All(u => process.Output.Contains(u, StringComparison.Ordinal)), $"the output holds {string.Join(", ", until)}");
        return (process.Output, result);
    }

    [GeneratedRegex(@"Platform admin key \(shown once, keep it safe\): (atpk_[A-Za-z0-9]{46})")]
    private static partial Regex AdminKeyLine();

    [GeneratedRegex(@"Demo tenant ready\. Its API token \(shown once, keep it safe\): (atk_[A-Za-z0-9]+)")]
    private static partial Regex DemoTokenLine();
}
