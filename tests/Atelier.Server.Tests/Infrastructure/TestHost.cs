using System.Net.Http.Headers;
using Atelier.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>
/// A real Atelier server for tests: the product's own host builder, Kestrel on a free loopback port, a real
/// database of its own. Tests talk to it over HTTP only (through <see cref="Client"/>).
/// </summary>
public sealed class TestHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private readonly bool _ownsDatabase;

    private TestHost(WebApplication app, TestDatabase db, string adminKey, FakeTimeProvider? clock, bool ownsDatabase)
    {
        _ownsDatabase = ownsDatabase;
        _app = app;
        Database = db;
        AdminKey = adminKey;
        Clock = clock;
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        BaseAddress = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
        Client = new ApiClient(new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) });
    }

    public TestDatabase Database { get; }
    public string AdminKey { get; }
    public FakeTimeProvider? Clock { get; }
    public Uri BaseAddress { get; }
    public ApiClient Client { get; }
    public IServiceProvider Services => _app.Services;

    /// <summary>
    /// <paramref name="settings"/> with long periods for the server's periodic timers (the job rescuer, the session and
    /// studio sweepers, the leader check, the function reconciler), for a test that moves its fake clock by days:
    /// <see cref="FakeTimeProvider.Advance"/> fires a periodic timer once for every period it passes, one after another,
    /// and 31 days of a 2 s leader check and 5 s reaps were a million ticks and two minutes of a test's time. A sweeper the
    /// test is about keeps the period <paramref name="settings"/> gives it.
    /// </summary>
    public static Dictionary<string, string> LongTimerPeriods(IDictionary<string, string> settings)
    {
        var all = new Dictionary<string, string>
        {
            ["Atelier:Jobs:RescueIntervalSeconds"] = "3600", ["Atelier:Sessions:SweepIntervalSeconds"] = "3600",
            ["Atelier:Sessions:StudioReapIntervalSeconds"] = "3600", ["Atelier:Functions:ReconcileIntervalSeconds"] = "3600",
            ["Atelier:Coordination:LeaderCheckSeconds"] = "60",
        };
        foreach (var (key, value) in settings)
        {
            all[key] = value;
        }

        return all;
    }

    /// <param name="settings">Extra configuration, as <c>Section:Key</c> → value.</param>
    /// <param name="fakeClock">Use a <see cref="FakeTimeProvider"/> the test moves by hand.</param>
    /// <param name="database">A database (and data folder) to start on again, as after a restart; the caller disposes it.</param>
    /// <param name="logs">Keeps every line the server logs at Information or above (the console output stays at Warning).</param>
    public static async Task<TestHost> StartAsync(IDictionary<string, string>? settings = null, bool fakeClock = false, TestDatabase? database = null,
        string? adminKey = null, LogCapture? logs = null)
    {
        var db = database ?? await TestDatabase.CreateAsync();
        adminKey ??= Secrets.Issue(Secrets.PlatformKeyPrefix);
        var config = new Dictionary<string, string>
        {
            ["Atelier:Server:Urls"] = "http://127.0.0.1:0",
            ["Atelier:Server:DataDirectory"] = Path.Combine(db.Folder, "data"),
            ["Atelier:Database:Provider"] = db.Provider,
            ["Atelier:Database:ConnectionString"] = db.ConnectionString,
            ["Atelier:Auth:BootstrapAdminKey"] = adminKey,
            ["Atelier:Embedded:DemoTenant"] = "false",
            ["Atelier:Embedded:LocalWorker"] = "false",
            ["Logging:LogLevel:Default"] = "Warning",
            ["Logging:LogLevel:Microsoft.EntityFrameworkCore"] = "None",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string>())
        {
            config[k] = v;
        }

        var clock = fakeClock ? new FakeTimeProvider(new DateTimeOffset(2026, 11, 27, 8, 0, 0, TimeSpan.Zero)) : null;
        var args = config.Select(kv => $"--{kv.Key}={kv.Value}").ToArray();
        var app = AtelierServer.Build(args, b =>
        {
            if (clock is not null)
            {
                b.Services.AddSingleton<TimeProvider>(clock);
            }

            if (logs is not null)
            {
                b.Logging.AddProvider(logs);
                b.Logging.AddFilter<LogCapture>(null, LogLevel.Information);
            }
        });
        await app.StartAsync();
        return new TestHost(app, db, adminKey, clock, database is null);
    }

    /// <summary>A client that sends the platform admin key and an operator id.</summary>
    public ApiClient Admin(string operatorId = "op-platform") => Client.With(AdminKey, operatorId);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        if (_ownsDatabase)
        {
            await Database.DisposeAsync();
        }
    }
}

/// <summary>An HTTP client bound to one credential, one operator and optional extra headers.</summary>
public sealed class ApiClient(HttpClient http, string? bearer = null, string? operatorId = null, IReadOnlyDictionary<string, string>? headers = null)
{
    public HttpClient Http => http;

    public ApiClient With(string? bearer, string? operatorId = null) => new(http, bearer, operatorId, headers);

    public ApiClient WithHeader(string name, string value)
    {
        var h = new Dictionary<string, string>(headers ?? new Dictionary<string, string>()) { [name] = value };
        return new ApiClient(http, bearer, operatorId, h);
    }

    public Task<ApiResult> GetAsync(string path) => SendAsync(HttpMethod.Get, path);
    public Task<ApiResult> DeleteAsync(string path) => SendAsync(HttpMethod.Delete, path);
    public Task<ApiResult> PostAsync(string path, object? body = null) => SendAsync(HttpMethod.Post, path, body);
    public Task<ApiResult> PutAsync(string path, object? body) => SendAsync(HttpMethod.Put, path, body);
    public Task<ApiResult> PatchAsync(string path, object? body) => SendAsync(HttpMethod.Patch, path, body);

    /// <summary>Sends a request as built by the caller (a binary body, say), with this client's credential.</summary>
    public async Task<ApiResult> SendRawAsync(HttpRequestMessage req)
    {
        Authorize(req);
        using var resp = await http.SendAsync(req);
        return await ApiResult.ReadAsync(resp);
    }

    /// <summary>Puts this client's credential on a request the caller sends itself (to read a binary answer, say).</summary>
    public HttpRequestMessage Authorize(HttpRequestMessage req)
    {
        if (bearer is not null)
        {
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        return req;
    }

    /// <summary>Sends a body: a string goes as raw JSON text, anything else is serialised.</summary>
    public async Task<ApiResult> SendAsync(HttpMethod method, string path, object? body = null, string contentType = "application/json")
    {
        using var req = new HttpRequestMessage(method, path);
        if (bearer is not null)
        {
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (operatorId is not null)
        {
            req.Headers.Add("X-Operator-Id", operatorId);
        }

        foreach (var (k, v) in headers ?? new Dictionary<string, string>())
        {
            req.Headers.TryAddWithoutValidation(k, v);
        }

        if (body is not null)
        {
            var text = body as string ?? System.Text.Json.JsonSerializer.Serialize(body, Atelier.Contracts.AtelierJson.Options);
            req.Content = new StringContent(text, System.Text.Encoding.UTF8);
            req.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        }

        using var resp = await http.SendAsync(req);
        return await ApiResult.ReadAsync(resp);
    }
}
