using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Webhooks;

/// <summary>
/// One tenant's silent webhook receiver cannot hold back another tenant's webhooks: the relay takes messages
/// round-robin by tenant, with a budget of messages in flight per tenant, and sends each as soon as a slot is free.
/// </summary>
public class WebhookFairnessTests
{
    /// <summary>A loopback listener that accepts connections, reads nothing and never answers; it keeps them open.</summary>
    private sealed class SilentListener : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly ConcurrentBag<Socket> _held = [];
        private readonly CancellationTokenSource _stop = new();

        public SilentListener()
        {
            _listener.Start(128);
            _ = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    try
                    {
                        _held.Add(await _listener.AcceptSocketAsync(_stop.Token));
                    }
                    catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                    {
                        return;
                    }
                }
            });
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Connections => _held.Count;

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            foreach (var s in _held)
            {
                s.Dispose();
            }

            _stop.Dispose();
        }
    }

    private static async Task<string> CanceledJobAsync(ApiClient app, string webhook)
    {
        var job = (await app.PostAsync("/api/v1/agents/default/jobs", new { input = new { prompt = "a lighthouse", steps = 2 }, webhook, webhookEvents = new[] { "canceled" } }))
            .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        (await app.PostAsync($"/api/v1/agents/default/jobs/{job}/cancel")).Ok();
        return job;
    }

    [Fact]
    public async Task ATenantsSilentReceiver_HoldsOnlyItsBudget_AndAnotherTenantsWebhookArrives()
    {
        using var silent = new SilentListener();
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Webhooks:AllowPrivateNetworks"] = "true", ["Atelier:Webhooks:PollMilliseconds"] = "100",
            // Long enough that none of A's messages is answered or times out while the test runs.
            ["Atelier:Webhooks:TimeoutSeconds"] = "300", ["Atelier:Webhooks:Concurrency"] = "8", ["Atelier:Webhooks:PerTenantConcurrency"] = "4",
        });
        var a = await Scenario.NewTenantAsync(host);
        var b = await Scenario.NewTenantAsync(host);
        var aApp = a.AppOf(host);
        for (var i = 0; i < 24; i++)
        {
            await CanceledJobAsync(aApp, $"http://127.0.0.1:{silent.Port}/hook/{i}");
        }

        // A's receiver now holds as many of A's messages as A's budget lets the relay send at once.
        await Eventually.UntilAsync(() => silent.Connections == 4, "four of A's messages are on the wire");

        var bJob = await CanceledJobAsync(b.AppOf(host), receiver.Url("/b"));
        await receiver.WaitForAsync(r => r.Count == 1, seconds: Eventually.DefaultDeadline.TotalSeconds, what: "tenant B's webhook");
        Assert.Contains(bJob, receiver.Received[0].Body, StringComparison.Ordinal);

        // The cause: B's message went while every one of A's was still unanswered, and A never had more than its budget out.
        var pending = (await aApp.GetAsync("/api/v1/webhook-deliveries?state=pending&pageSize=100")).Ok();
        Assert.Equal(24, pending.GetProperty("total").GetInt32());
        Assert.All(pending.GetProperty("items").EnumerateArray(), d => Assert.Equal(0, d.GetProperty("tries").GetInt32()));
        Assert.Equal(4, silent.Connections);
        // The relay records the delivery after the receiver's answer reaches it, so the row turns delivered just after the
        // receiver has the body: wait for it, with a deadline.
        await Eventually.UntilAsync(async () => (await b.AppOf(host).GetAsync($"/api/v1/webhook-deliveries?jobId={bJob}")).Ok()
            .GetProperty("items")[0].GetProperty("state").GetString() == "delivered", "tenant B's message recorded as delivered");
    }

    [Fact]
    public async Task ThreeTenantsSilentReceivers_EachHoldItsBudget_WhileAFourthTenantsBacklogIsDelivered()
    {
        using var silent = new SilentListener();
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Webhooks:AllowPrivateNetworks"] = "true", ["Atelier:Webhooks:PollMilliseconds"] = "100",
            ["Atelier:Webhooks:TimeoutSeconds"] = "300", ["Atelier:Webhooks:Concurrency"] = "16", ["Atelier:Webhooks:PerTenantConcurrency"] = "4",
        });

        // Tenant ids grow with time: created in this order, the fourth tenant sits between the first silent one and the
        // other two, so the relay, which goes on after the tenant its last take ended with (the third silent one), reaches
        // it only by starting over from the first tenant and passing that one, at its budget.
        var s1 = await Scenario.NewTenantAsync(host);
        var d = await Scenario.NewTenantAsync(host);
        var s2 = await Scenario.NewTenantAsync(host);
        var s3 = await Scenario.NewTenantAsync(host);
        var silentApps = new[] { s1.AppOf(host), s2.AppOf(host), s3.AppOf(host) };
        for (var t = 0; t < silentApps.Length; t++)
        {
            for (var i = 0; i < 6; i++)
            {
                await CanceledJobAsync(silentApps[t], $"http://127.0.0.1:{silent.Port}/hook/{i}");
            }

            // Each of the three holds its budget on the wire before the next one's messages come.
            await Eventually.UntilAsync(() => silent.Connections == 4 * (t + 1), $"four messages of silent tenant {t + 1} are on the wire");
        }

        // The fourth tenant's messages go through the four slots left.
        var dApp = d.AppOf(host);
        var dJobs = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            dJobs.Add(await CanceledJobAsync(dApp, receiver.Url($"/d/{i}")));
        }

        await receiver.WaitForAsync(r => r.Count == dJobs.Count, seconds: Eventually.DefaultDeadline.TotalSeconds, what: "the fourth tenant's ten webhooks");
        Assert.Equal(dJobs.Order(StringComparer.Ordinal), receiver.Received.Select(r => dJobs.Single(j => r.Body.Contains(j, StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal));

        // The cause: the silent tenants never had more than their budget out, and each still has all six pending.
        Assert.Equal(12, silent.Connections);
        foreach (var app in silentApps)
        {
            var pending = (await app.GetAsync("/api/v1/webhook-deliveries?state=pending&pageSize=100")).Ok();
            Assert.Equal(6, pending.GetProperty("total").GetInt32());
        }
    }

    [Fact]
    public async Task SixtySixTenantsAtTheirBudget_DoNotHideTheTenantPastThem()
    {
        using var silent = new SilentListener();
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Webhooks:AllowPrivateNetworks"] = "true", ["Atelier:Webhooks:PollMilliseconds"] = "100",
            ["Atelier:Webhooks:TimeoutSeconds"] = "300", ["Atelier:Webhooks:Concurrency"] = "80", ["Atelier:Webhooks:PerTenantConcurrency"] = "1",
        });

        // 65 silent tenants, then the one that will send, then one more silent tenant: its message goes last, so the
        // relay's next take starts after it and starts over from the first tenant, walking 65 tenants at their budget (more
        // than one page of the walk) before it reaches the sender.
        var silentApps = new List<ApiClient>();
        for (var t = 0; t < 65; t++)
        {
            silentApps.Add((await Scenario.NewTenantAsync(host)).AppOf(host));
        }

        var sender = (await Scenario.NewTenantAsync(host)).AppOf(host);
        var last = (await Scenario.NewTenantAsync(host)).AppOf(host);
        foreach (var app in silentApps)
        {
            await CanceledJobAsync(app, $"http://127.0.0.1:{silent.Port}/hook");
        }

        await Eventually.UntilAsync(() => silent.Connections == 65, "one message of each of the 65 silent tenants is on the wire");
        await CanceledJobAsync(last, $"http://127.0.0.1:{silent.Port}/hook");
        await Eventually.UntilAsync(() => silent.Connections == 66, "the last silent tenant's message is on the wire");

        var job = await CanceledJobAsync(sender, receiver.Url("/sender"));
        await receiver.WaitForAsync(r => r.Count == 1, seconds: Eventually.DefaultDeadline.TotalSeconds, what: "the sender's webhook");
        Assert.Contains(job, receiver.Received[0].Body, StringComparison.Ordinal);
        Assert.Equal(66, silent.Connections);
    }
}
