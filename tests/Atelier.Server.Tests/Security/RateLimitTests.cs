using System.Net;
using System.Net.Sockets;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Security;

/// <summary>
/// Rate limits and caps (issue 12, item 7), through the API with small limits: buckets per credential and per tenant,
/// a window per client address on refused credentials and on the session check, caps on event streams and sync waits.
/// Buckets refill once an hour here, so what the tests count is what the limits allowed, not how fast the machine was.
/// </summary>
public class RateLimitTests
{
    private static Task<TestHost> StartAsync(params (string Key, string Value)[] limits)
    {
        var settings = new Dictionary<string, string>
        {
            ["Atelier:RateLimits:PerCredential:PeriodSeconds"] = "3600",
            ["Atelier:RateLimits:PerTenant:PeriodSeconds"] = "3600",
            ["Atelier:RateLimits:FailedAuthPerAddress:WindowSeconds"] = "3600",
            ["Atelier:RateLimits:SessionChecksPerAddress:WindowSeconds"] = "3600",
        };
        foreach (var (k, v) in limits)
        {
            settings["Atelier:RateLimits:" + k] = v;
        }

        return TestHost.StartAsync(settings);
    }

    /// <summary>Asserts the refusal: 429 in the envelope, errCode <c>rate_limited</c>, and a <c>Retry-After</c> in whole seconds.</summary>
    private static int AssertLimited(ApiResult r)
    {
        Assert.Equal("rate_limited", r.Error(ErrorCatalog.b_agent_jobpreinvokefail, 429).GetProperty("errCode").GetString());
        Assert.True(r.Headers.TryGetValue("Retry-After", out var retry), "no Retry-After");
        var seconds = int.Parse(retry, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(seconds, 1, 86400);
        return seconds;
    }

    /// <summary>An HTTP client whose connections come from another loopback address (127.0.0.2), as another client machine would.</summary>
    private static HttpClient FromOtherAddress(Uri baseAddress) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, ct) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
            await socket.ConnectAsync(context.DnsEndPoint, ct);
            return new NetworkStream(socket, ownsSocket: true);
        },
    })
    { BaseAddress = baseAddress };

    private static async Task<ApiClient> SecondTokenAsync(TestHost host, TenantWorld world) =>
        host.Client.With((await host.Admin().WithHeader("X-Tenant-Id", world.TenantId).PostAsync($"/api/v1/apps/{world.AppId}/tokens",
            new { name = "another", scopes = new[] { "app" } })).Created().GetProperty("secret").GetString());

    [Fact]
    public async Task Burst_OverTheCredentialsBucket_Is429_OtherCredentialsAndTenantsAreNot()
    {
        await using var host = await StartAsync(("PerCredential:TokenLimit", "20"), ("PerCredential:TokensPerPeriod", "1"));
        var world = await Scenario.NewTenantAsync(host);
        var otherTenant = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        for (var i = 0; i < 20; i++)
        {
            (await app.GetAsync("/api/v1/me")).Ok();
        }

        AssertLimited(await app.GetAsync("/api/v1/me"));
        AssertLimited(await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "still limited", steps = 2 }));
        (await (await SecondTokenAsync(host, world)).GetAsync("/api/v1/me")).Ok();
        (await otherTenant.AppOf(host).GetAsync("/api/v1/me")).Ok();
    }

    [Fact]
    public async Task Burst_OverTheTenantsBucket_HoldsEveryCredentialOfIt_NotOtherTenantsNorWorkers()
    {
        await using var host = await StartAsync(("PerTenant:TokenLimit", "10"), ("PerTenant:TokensPerPeriod", "1"));
        var world = await Scenario.NewTenantAsync(host);
        var otherTenant = await Scenario.NewTenantAsync(host);
        var worker = await WorkerProtocol.RegisterAsync(host);
        var app = world.AppOf(host);
        for (var i = 0; i < 10; i++)
        {
            (await app.GetAsync("/api/v1/me")).Ok();
        }

        AssertLimited(await (await SecondTokenAsync(host, world)).GetAsync("/api/v1/me"));
        AssertLimited(await world.AdminOf(host).GetAsync("/api/v1/apps"));
        (await otherTenant.AppOf(host).GetAsync("/api/v1/me")).Ok();
        // The platform admin acting in the tenant, and the worker protocol, are not the tenant's traffic.
        (await host.Admin().WithHeader("X-Tenant-Id", world.TenantId).GetAsync("/api/v1/apps")).Ok();
        for (var i = 0; i < 15; i++)
        {
            Assert.Equal(HttpStatusCode.NoContent, (await WorkerProtocol.LeaseAsync(worker)).Status);
        }
    }

    [Fact]
    public async Task RefusedCredentials_FromOneAddress_AreLimited_ThenThatAddressIsRefusedOutright()
    {
        await using var host = await StartAsync(("FailedAuthPerAddress:PermitLimit", "5"));
        var world = await Scenario.NewTenantAsync(host);
        // No credential at all is not a refused credential.
        for (var i = 0; i < 10; i++)
        {
            (await host.Client.GetAsync("/api/v1/me")).Error(ErrorCatalog.p_common_apitokenrequired, 401);
        }

        // Nor is junk, refused by its checksum without any lookup.
        for (var i = 0; i < 10; i++)
        {
            (await host.Client.With("atk_junk" + i).GetAsync("/api/v1/me")).Error(ErrorCatalog.p_token_invalidapitoken, 401);
        }

        (await world.AppOf(host).GetAsync("/api/v1/me")).Ok();
        var guess = host.Client.With(Atelier.Core.Security.Secrets.Issue(Atelier.Core.Security.Secrets.TokenPrefix));
        for (var i = 0; i < 5; i++)
        {
            (await guess.GetAsync("/api/v1/me")).Error(ErrorCatalog.p_token_invalidapitoken, 401);
        }

        AssertLimited(await guess.GetAsync("/api/v1/me"));
        AssertLimited(await host.Client.With("junk").GetAsync("/api/v1/me"));
        // Past the limit the address's credentials are not even looked at, good ones included.
        AssertLimited(await world.AppOf(host).GetAsync("/api/v1/me"));

        // Another client address is not held.
        using var elsewhere = FromOtherAddress(host.BaseAddress);
        (await new ApiClient(elsewhere, world.AppToken).GetAsync("/api/v1/me")).Ok();
        (await new ApiClient(elsewhere, "junk").GetAsync("/api/v1/me")).Error(ErrorCatalog.p_token_invalidapitoken, 401);
    }

    [Fact]
    public async Task SessionCheck_FromOneAddress_IsLimited()
    {
        await using var host = await StartAsync(("SessionChecksPerAddress:PermitLimit", "5"));
        var world = await Scenario.NewTenantAsync(host);
        var session = (await world.AppOf(host).PostAsync("/api/v1/sessions", new { endUserId = "u-1", expiredAt = DateTime.UtcNow.AddHours(1) })).Created();
        var credential = session.GetProperty("credential").GetString()!;
        for (var i = 0; i < 5; i++)
        {
            Assert.NotEqual(HttpStatusCode.TooManyRequests, (await host.Client.PostAsync("/api/v1/sessions/check", new { credential, mode = "api" })).Status);
        }

        AssertLimited(await host.Client.PostAsync("/api/v1/sessions/check", new { credential, mode = "api" }));
        AssertLimited(await host.Client.PostAsync("/api/v1/sessions/check", new { credential = Atelier.Core.Security.Secrets.Issue(Atelier.Core.Security.Secrets.SessionPrefix), mode = "api" }));
        // Junk costs no lookup (its checksum refuses it) and is not what the window counts.
        (await host.Client.PostAsync("/api/v1/sessions/check", new { credential = "ats_junk", mode = "api" })).Error(ErrorCatalog.p_session_sessionnotfound, 401);
        using var elsewhere = FromOtherAddress(host.BaseAddress);
        Assert.NotEqual(HttpStatusCode.TooManyRequests, (await new ApiClient(elsewhere).PostAsync("/api/v1/sessions/check", new { credential, mode = "api" })).Status);
    }

    [Fact]
    public async Task EventStreams_AreCappedPerCaller_AndFreedWhenClosed()
    {
        await using var host = await StartAsync(("StreamsPerCaller", "2"));
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var task = (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "streamed", steps = 2 })).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString()!;

        async Task<HttpResponseMessage> OpenAsync(string token)
        {
            var req = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/tasks/{task}/events");
            req.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            return await host.Client.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        }

        using var one = await OpenAsync(world.AppToken);
        using var two = await OpenAsync(world.AppToken);
        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.OK), (one.StatusCode, two.StatusCode));
        using (var three = await OpenAsync(world.AppToken))
        {
            // The status first: an accepted stream would never end.
            Assert.Equal(HttpStatusCode.TooManyRequests, three.StatusCode);
            AssertLimited(await ApiResult.ReadAsync(three));
        }

        using (var admins = await OpenAsync(world.AdminToken))
        {
            Assert.Equal(HttpStatusCode.OK, admins.StatusCode);
        }

        // Closing a stream gives its place back (once the server sees the client gone).
        one.Dispose();
        await Eventually.UntilAsync(async () =>
        {
            using var again = await OpenAsync(world.AppToken);
            return again.StatusCode == HttpStatusCode.OK;
        }, "a closed stream's place is free again");
    }

    [Fact]
    public async Task SyncWaits_AreCappedPerCaller()
    {
        // No worker: a sync call waits until its client gives up (or, as a backstop, five minutes).
        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:RateLimits:SyncWaitsPerCaller"] = "1", ["Atelier:Jobs:SyncTimeoutSeconds"] = "300",
        });
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var admin = world.AdminOf(host);
        async Task<int> JobsAsync() => (await admin.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32();

        // No worker: the first call waits (for its job) until it is given up.
        using var giveUp = new CancellationTokenSource();
        var waiting = app.Http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/sdapi/v1/txt2img")
        {
            Headers = { Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", world.AppToken) },
            Content = new StringContent("""{"prompt":"waiting","steps":2}""", System.Text.Encoding.UTF8, "application/json"),
        }, giveUp.Token);
        await Eventually.UntilAsync(async () => await JobsAsync() == 1, "the first sync call queued its job");

        AssertLimited(await app.PostAsync("/sdapi/v1/txt2img", new { prompt = "second", steps = 2 }));
        Assert.Equal(1, await JobsAsync());

        // Given up by its client, the first wait ends and its place is free again (once the server has seen it go).
        await giveUp.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        using var stop = new CancellationTokenSource();
        Task<HttpResponseMessage>? next = null;
        await Eventually.UntilAsync(async () =>
        {
            if (next is { IsCompleted: true })
            {
                AssertLimited(await ApiResult.ReadAsync(await next));
                next = null;
            }

            next ??= app.Http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/sdapi/v1/txt2img")
            {
                Headers = { Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", world.AppToken) },
                Content = new StringContent("""{"prompt":"later","steps":2}""", System.Text.Encoding.UTF8, "application/json"),
            }, stop.Token);
            return await JobsAsync() == 2;
        }, "a later sync call is let in");
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => next!);
    }
}
