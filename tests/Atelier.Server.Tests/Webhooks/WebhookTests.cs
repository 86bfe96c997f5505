using System.Net;
using System.Text;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;
using Atelier.Core.Jobs;
using Atelier.Data;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using StandardWebhooks;
using StandardWebhooks.Diagnostics;

namespace Atelier.Server.Tests.Webhooks;

/// <summary>
/// Webhooks through the API with a real receiver on loopback: Standard Webhooks signatures checked by an independent
/// implementation (the StandardWebhooks NuGet package), retries, the delivery log, replay, rotation, event filters and
/// the address guard.
/// </summary>
public class WebhookTests
{
    private static Dictionary<string, string> Config(double[] schedule, bool allowPrivate = true)
    {
        var config = new Dictionary<string, string>
        {
            ["Atelier:Webhooks:AllowPrivateNetworks"] = allowPrivate ? "true" : "false",
            ["Atelier:Webhooks:PollMilliseconds"] = "100",
            ["Atelier:Webhooks:TimeoutSeconds"] = "30",
        };
        for (var i = 0; i < schedule.Length; i++)
        {
            config[$"Atelier:Webhooks:RetryScheduleSeconds:{i}"] = schedule[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return config;
    }

    private static async Task<string> SubmitAsync(ApiClient app, string? webhook, string[]? events = null, string prompt = "a lighthouse")
    {
        var body = (await app.PostAsync("/api/v1/agents/default/jobs", new { input = new { prompt, steps = 2 }, webhook, webhookEvents = events }))
            .Ok(HttpStatusCode.Accepted);
        return body.GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> DeliveryOfAsync(ApiClient client, string jobId, Func<JsonElement, bool> done)
    {
        var items = await Eventually.ValueAsync(async () => (await client.GetAsync($"/api/v1/webhook-deliveries?jobId={jobId}")).Ok().GetProperty("items"),
            i => i.GetArrayLength() > 0 && done(i[0]), $"the webhook of job {jobId} got where it should");
        return (await client.GetAsync($"/api/v1/webhook-deliveries/{items[0].GetProperty("id").GetString()}")).Ok();
    }

    private static string Flip(string s, int at) => s[..at] + (char)(s[at] ^ 1) + s[(at + 1)..];

    private static HeaderDictionary With(HeaderDictionary headers, string name, string value)
    {
        var copy = new HeaderDictionary();
        foreach (var (k, v) in headers)
        {
            copy[k] = v;
        }

        copy[name] = value;
        return copy;
    }

    [Fact]
    public async Task ManyMessagesOfTwoTenants_EndingAtOnce_AreEachRecordedOnceUnderTheirOwnTenant()
    {
        // The relay writes the attempts that end together in one transaction (each tenant's rows under its own scope):
        // forty messages of two tenants, half refused once, all sent at once, each ends with its own attempts.
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Answer = (path, n) => path.EndsWith("/odd", StringComparison.Ordinal) && n == 0 ? 500 : 200;
        var config = Config([0, 0.2]);
        config["Atelier:Webhooks:Concurrency"] = "32";
        config["Atelier:Webhooks:PerTenantConcurrency"] = "16";
        await using var host = await TestHost.StartAsync(config);
        var a = await Scenario.NewTenantAsync(host);
        var b = await Scenario.NewTenantAsync(host);
        var jobs = new Dictionary<string, (ApiClient App, string Path, string Tenant)>();
        foreach (var (world, name) in new[] { (a, "a"), (b, "b") })
        {
            var app = world.AppOf(host);
            for (var i = 0; i < 20; i++)
            {
                var path = $"/{name}/{i}/{(i % 2 == 1 ? "odd" : "even")}";
                var id = (await app.PostAsync("/api/v1/agents/default/jobs", new { input = new { prompt = "a lighthouse", steps = 2 }, webhook = receiver.Url(path), webhookEvents = new[] { "canceled" } }))
                    .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
                jobs[id] = (app, path, world.TenantId);
            }
        }

        // Canceled together, so that their messages are due, sent and answered together.
        await Task.WhenAll(jobs.Select(j => j.Value.App.PostAsync($"/api/v1/agents/default/jobs/{j.Key}/cancel")));
        foreach (var (jobId, (app, path, _)) in jobs)
        {
            var delivery = await DeliveryOfAsync(app, jobId, d => d.GetProperty("state").GetString() == "delivered");
            var expected = path.EndsWith("/odd", StringComparison.Ordinal) ? new[] { 500, 200 } : [200];
            Assert.Equal(expected.Length, delivery.GetProperty("tries").GetInt32());
            Assert.Equal(expected, delivery.GetProperty("attempts").EnumerateArray().Select(x => x.GetProperty("status").GetInt32()));
            Assert.Equal(expected, receiver.On(path).Select(r => r.Answer));
        }

        // Each tenant's log holds its own twenty messages and none of the other's.
        foreach (var world in new[] { a, b })
        {
            var mine = (await world.AppOf(host).GetAsync("/api/v1/webhook-deliveries?pageSize=100")).Ok();
            Assert.Equal(20, mine.GetProperty("total").GetInt32());
            Assert.Equal(jobs.Where(j => j.Value.Tenant == world.TenantId).Select(j => j.Key).Order(StringComparer.Ordinal),
                mine.GetProperty("items").EnumerateArray().Select(d => d.GetProperty("jobId").GetString()!).Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public async Task ReceiverFailingThreeTimes_GetsExactlyFourAttemptsOfOneMessage_EachVerifiedIndependently()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Answer = (_, n) => n < 3 ? 500 : 200;
        await using var host = await TestHost.StartAsync(Config([0, 0.3, 0.3, 0.3, 0.3, 0.3]));
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, "noop");
        var app = world.AppOf(host);

        var jobId = await SubmitAsync(app, receiver.Url("/hooks/a"), ["completed"]);
        var job = (await app.GetAsync($"/api/v1/agents/default/jobs/{jobId}")).Ok();
        Assert.Equal(receiver.Url("/hooks/a"), job.GetProperty("webhook").GetString());
        Assert.Equal(["completed"], job.GetProperty("webhookEvents").EnumerateArray().Select(e => e.GetString()));

        // Once the server records the message as delivered, it sends it no more: the count is then final.
        await DeliveryOfAsync(app, jobId, d => d.GetProperty("state").GetString() == "delivered");
        var got = receiver.Received;
        Assert.Equal([500, 500, 500, 200], got.Select(r => r.Answer));
        Assert.Single(got.Select(r => r.Id).Distinct());
        Assert.Single(got.Select(r => r.Body).Distinct());
        Assert.StartsWith("msg_", got[0].Id, StringComparison.Ordinal);
        Assert.DoesNotContain('.', got[0].Id);
        for (var i = 1; i < got.Count; i++)
        {
            Assert.True(got[i].At - got[i - 1].At >= TimeSpan.FromMilliseconds(250), $"attempt {i + 1} came {(got[i].At - got[i - 1].At).TotalMilliseconds} ms after the one before");
        }

        // Every attempt verifies with the independent implementation; one flipped byte anywhere does not.
        var secret = (await world.AdminOf(host).GetAsync($"/api/v1/apps/{world.AppId}/webhook")).Ok().GetProperty("secret").GetString()!;
        Assert.StartsWith("whsec_", secret, StringComparison.Ordinal);
        var verifier = new StandardWebhook(secret);
        foreach (var r in got)
        {
            verifier.Verify(r.Body, r.Headers);
        }

        var last = got[^1];
        var signature = last.Headers["webhook-signature"].ToString();
        Assert.StartsWith("v1,", signature, StringComparison.Ordinal);
        Assert.Throws<WebhookVerificationException>(() => verifier.Verify(Flip(last.Body, last.Body.Length / 2), last.Headers));
        Assert.Throws<WebhookVerificationException>(() => verifier.Verify(last.Body, With(last.Headers, "webhook-id", Flip(last.Id, last.Id.Length - 1))));
        Assert.Throws<WebhookVerificationException>(() => verifier.Verify(last.Body, With(last.Headers, "webhook-timestamp",
            (long.Parse(last.Headers["webhook-timestamp"].ToString(), System.Globalization.CultureInfo.InvariantCulture) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture))));
        Assert.Throws<WebhookVerificationException>(() => verifier.Verify(last.Body, With(last.Headers, "webhook-signature", Flip(signature, 10))));
        Assert.Throws<WebhookVerificationException>(() => new StandardWebhook("whsec_" + Convert.ToBase64String(new byte[32])).Verify(last.Body, last.Headers));

        // The body: Standard Webhooks' shape, the job as it ended and its result.
        using var payload = JsonDocument.Parse(last.Body);
        Assert.Equal("job.completed", payload.RootElement.GetProperty("type").GetString());
        var data = payload.RootElement.GetProperty("data");
        Assert.Equal(jobId, data.GetProperty("job").GetProperty("id").GetString());
        Assert.Equal("succeeded", data.GetProperty("job").GetProperty("state").GetString());
        Assert.Equal(1, data.GetProperty("result").GetProperty("images").GetArrayLength());

        // The delivery log: the message and its four attempts, with status and latency.
        var delivery = await DeliveryOfAsync(app, jobId, d => d.GetProperty("state").GetString() == "delivered");
        Assert.Equal(last.Id, delivery.GetProperty("id").GetString());
        Assert.Equal("completed", delivery.GetProperty("event").GetString());
        Assert.Equal(4, delivery.GetProperty("tries").GetInt32());
        Assert.Equal(200, delivery.GetProperty("lastStatus").GetInt32());
        var attempts = delivery.GetProperty("attempts").EnumerateArray().ToList();
        Assert.Equal([500, 500, 500, 200], attempts.Select(a => a.GetProperty("status").GetInt32()));
        Assert.Equal([1, 2, 3, 4], attempts.Select(a => a.GetProperty("number").GetInt32()));
        Assert.All(attempts, a => Assert.InRange(a.GetProperty("latencyMs").GetInt32(), 0, 5000));
        Assert.Equal(JsonValueKind.Null, delivery.GetProperty("errorCode").ValueKind);
    }

    [Fact]
    public async Task ExhaustedRetries_AreInvokeFail_410StopsAtOnce_RedirectsAreNotFollowed_ReplaySendsTheSameMessage()
    {
        using var elsewhere = new ConnectionCounter();
        await using var receiver = await WebhookReceiver.StartAsync();
        var up = false;
        receiver.Answer = (path, _) => path switch { "/gone" => 410, "/moved" => 302, _ => Volatile.Read(ref up) ? 200 : 503 };
        receiver.RedirectTo = $"http://127.0.0.1:{elsewhere.Port}/";
        await using var host = await TestHost.StartAsync(Config([0, 0.1, 0.1]));
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);

        var jobs = new Dictionary<string, string>();
        foreach (var path in new[] { "/down", "/gone", "/moved" })
        {
            jobs[path] = await SubmitAsync(app, receiver.Url(path), ["canceled"]);
            (await app.PostAsync($"/api/v1/agents/default/jobs/{jobs[path]}/cancel")).Ok();
        }

        var down = await DeliveryOfAsync(app, jobs["/down"], d => d.GetProperty("state").GetString() == "failed");
        Assert.Equal(ErrorCatalog.s_webhook_invokefail.Code, down.GetProperty("errorCode").GetString());
        Assert.Equal(3, down.GetProperty("tries").GetInt32());
        Assert.Equal(503, down.GetProperty("lastStatus").GetInt32());
        Assert.Contains("gave up after 3 attempts", down.GetProperty("lastError").GetString(), StringComparison.Ordinal);

        var gone = await DeliveryOfAsync(app, jobs["/gone"], d => d.GetProperty("state").GetString() == "failed");
        Assert.Equal(ErrorCatalog.s_webhook_invokefail.Code, gone.GetProperty("errorCode").GetString());
        Assert.Equal(1, gone.GetProperty("tries").GetInt32());
        Assert.Equal(410, gone.GetProperty("lastStatus").GetInt32());

        var moved = await DeliveryOfAsync(app, jobs["/moved"], d => d.GetProperty("state").GetString() == "failed");
        Assert.Equal(302, moved.GetProperty("lastStatus").GetInt32());
        Assert.Contains("redirects are not followed", moved.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, elsewhere.Connections);

        // Each message was recorded failed after its last answer came: what the receiver has is final.
        Assert.Equal(3, receiver.On("/down").Count);
        Assert.Single(receiver.On("/gone"));

        // Replay: one more attempt of the same message (same id, same body), now answered.
        Volatile.Write(ref up, true);
        var replayed = (await app.PostAsync($"/api/v1/webhook-deliveries/{down.GetProperty("id").GetString()}/replay")).Ok();
        Assert.Equal("pending", replayed.GetProperty("state").GetString());
        var delivered = await DeliveryOfAsync(app, jobs["/down"], d => d.GetProperty("state").GetString() == "delivered");
        Assert.Equal(4, delivered.GetProperty("tries").GetInt32());
        Assert.Equal(JsonValueKind.Null, delivered.GetProperty("errorCode").ValueKind);
        var sent = receiver.On("/down");
        Assert.Equal(4, sent.Count);
        Assert.Single(sent.Select(r => r.Id).Distinct());
        Assert.Single(sent.Select(r => r.Body).Distinct());
        Assert.Equal("job.canceled", JsonDocument.Parse(sent[0].Body).RootElement.GetProperty("type").GetString());

        (await app.GetAsync("/api/v1/webhook-deliveries?state=lost")).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal(2, (await app.GetAsync("/api/v1/webhook-deliveries?state=failed")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task EventFilters_AppDefault_PredictTasks_AndEveryEvent()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var host = await TestHost.StartAsync(Config([0]));
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var admin = world.AdminOf(host);

        // The app's default webhook serves jobs that name none (an end user's session's too).
        var put = (await admin.PutAsync($"/api/v1/apps/{world.AppId}/webhook", new { url = receiver.Url("/default"), events = new[] { "canceled", "failed" } })).Ok();
        Assert.Equal(["failed", "canceled"], put.GetProperty("events").EnumerateArray().Select(e => e.GetString()));
        var plain = await SubmitAsync(app, null);
        (await app.PostAsync($"/api/v1/agents/default/jobs/{plain}/cancel")).Ok();
        var session = (await app.PostAsync("/api/v1/sessions", new { endUserId = "u-hook" })).Created();
        var user = host.Client.With(session.GetProperty("credential").GetString()!);
        var userTask = (await user.PostAsync("/api/v1/predict/txt2img", new { prompt = "a kite", steps = 2 })).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString()!;
        Assert.Equal(receiver.Url("/default"), (await app.GetAsync($"/api/v1/tasks/{userTask}")).Ok().GetProperty("webhook").GetString());
        Assert.Equal(JsonValueKind.Null, (await user.GetAsync($"/api/v1/tasks/{userTask}")).Ok().GetProperty("webhook").ValueKind); // not shown to the end user
        (await user.PostAsync($"/api/v1/tasks/{userTask}/cancellation")).Ok();
        await receiver.WaitForAsync(r => r.Count(x => x.Path == "/default") >= 2);

        await using var worker = await InProcessWorker.StartAsync(host, "noop");
        var both = await SubmitAsync(app, receiver.Url("/both"), ["started", "completed"]);
        var failing = await SubmitAsync(app, receiver.Url("/fails"), prompt: "[noop:fail] a storm");

        // A predict task takes Replicate's field names; the engine never sees them.
        var task = (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "a meadow", steps = 2, webhook = receiver.Url("/task"), webhook_events_filter = new[] { "completed" } }))
            .Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString()!;
        Assert.Equal(receiver.Url("/task"), (await app.GetAsync($"/api/v1/tasks/{task}")).Ok().GetProperty("webhook").GetString());

        await receiver.WaitForAsync(r => r.Count(x => x.Path == "/both") >= 2 && r.Any(x => x.Path == "/task") && r.Count(x => x.Path == "/fails") >= 2);
        // Every job has ended (its last event came), so every message it will ever send is in the outbox: once none is
        // pending, the receiver has all there is.
        await Eventually.UntilAsync(async () => (await app.GetAsync("/api/v1/webhook-deliveries?state=pending")).Ok().GetProperty("total").GetInt32() == 0,
            "no message is pending");
        string[] Types(string path) => [.. receiver.On(path).Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("type").GetString()!).Order()];
        Assert.Equal(["job.canceled", "job.canceled"], Types("/default"));
        Assert.Equal(["job.completed", "job.started"], Types("/both"));
        Assert.Equal(["job.completed"], Types("/task"));
        Assert.Equal(["job.failed", "job.started"], Types("/fails"));
        var failed = receiver.On("/fails").Select(r => JsonDocument.Parse(r.Body).RootElement).Single(r => r.GetProperty("type").GetString() == "job.failed");
        Assert.Equal(failing, failed.GetProperty("data").GetProperty("job").GetProperty("id").GetString());
        Assert.Equal(ErrorCatalog.b_predict_predictfail.Code, failed.GetProperty("data").GetProperty("job").GetProperty("errorCode").GetString());
        Assert.Equal(2, (await app.GetAsync($"/api/v1/webhook-deliveries?jobId={both}")).Ok().GetProperty("total").GetInt32());

        // The default removed: jobs that name none send nothing.
        (await admin.PutAsync($"/api/v1/apps/{world.AppId}/webhook", new { url = (string?)null })).Ok();
        var quiet = await SubmitAsync(app, null);
        await Eventually.UntilAsync(async () => (await app.GetAsync($"/api/v1/agents/default/jobs/{quiet}")).Ok().GetProperty("state").GetString() == "succeeded",
            "the quiet job ended (every state change that could send a message has happened)");
        Assert.Equal(0, (await app.GetAsync($"/api/v1/webhook-deliveries?jobId={quiet}")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task RotatedSecret_BothSignDuringTheOverlap_ThenOnlyTheNewOne()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var host = await TestHost.StartAsync(Config([0]));
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var admin = world.AdminOf(host);
        var first = (await admin.GetAsync($"/api/v1/apps/{world.AppId}/webhook")).Ok().GetProperty("secret").GetString()!;
        Assert.Equal(first, (await admin.GetAsync($"/api/v1/apps/{world.AppId}/webhook")).Ok().GetProperty("secret").GetString());

        var rotated = (await admin.PostAsync($"/api/v1/apps/{world.AppId}/webhook/secret-rotations", new { overlapSeconds = 3600 })).Ok();
        var second = rotated.GetProperty("secret").GetString()!;
        Assert.NotEqual(first, second);
        Assert.Equal(first, rotated.GetProperty("previousSecret").GetString());

        async Task<ReceivedWebhook> SendOneAsync(string path)
        {
            var job = await SubmitAsync(app, receiver.Url(path), ["canceled"]);
            (await app.PostAsync($"/api/v1/agents/default/jobs/{job}/cancel")).Ok();
            await receiver.WaitForAsync(r => r.Any(x => x.Path == path));
            return receiver.On(path)[0];
        }

        // Two signatures, the current secret's first. The NuGet verifier only ever reads the first entry of the header
        // (its loop stops before the second), so each signature is also checked on its own.
        var during = await SendOneAsync("/during");
        var signatures = during.Headers["webhook-signature"].ToString().Split(' ');
        Assert.Equal(2, signatures.Length);
        new StandardWebhook(second).Verify(during.Body, during.Headers);
        new StandardWebhook(second).Verify(during.Body, With(during.Headers, "webhook-signature", signatures[0]));
        new StandardWebhook(first).Verify(during.Body, With(during.Headers, "webhook-signature", signatures[1]));
        Assert.Throws<WebhookVerificationException>(() => new StandardWebhook(first).Verify(during.Body, With(during.Headers, "webhook-signature", signatures[0])));

        var third = (await admin.PostAsync($"/api/v1/apps/{world.AppId}/webhook/secret-rotations", new { overlapSeconds = 0 })).Ok();
        Assert.Equal(JsonValueKind.Null, third.GetProperty("previousSecret").ValueKind);
        var after = await SendOneAsync("/after");
        Assert.Single(after.Headers["webhook-signature"].ToString().Split(' '));
        new StandardWebhook(third.GetProperty("secret").GetString()!).Verify(after.Body, after.Headers);
        Assert.Throws<WebhookVerificationException>(() => new StandardWebhook(second).Verify(after.Body, after.Headers));

        (await admin.PostAsync($"/api/v1/apps/{world.AppId}/webhook/secret-rotations", new { overlapSeconds = -1 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await admin.PostAsync("/api/v1/apps/app_missing/webhook/secret-rotations", new { })).Error(ErrorCatalog.b_user_appnotfound, 404);
        (await app.GetAsync($"/api/v1/apps/{world.AppId}/webhook")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
    }

    [Fact]
    public async Task BadWebhookInput_IsRefusedAndNothingIsQueued()
    {
        await using var host = await TestHost.StartAsync(Config([0], allowPrivate: false));
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var input = new { prompt = "x", steps = 2 };
        (await app.PostAsync("/api/v1/agents/default/jobs", new { input, webhook = "ftp://example.com/hook" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/api/v1/agents/default/jobs", new { input, webhook = "not a url" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/api/v1/agents/default/jobs", new { input, webhook = "https://user:pw@example.com/hook" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/api/v1/agents/default/jobs", new { input, webhook = "https://example.com/" + new string('a', 2100) })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/api/v1/agents/default/jobs", new { input, webhook = "https://example.com/hook", webhookEvents = new[] { "exploded" } })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/api/v1/agents/default/jobs", new { input, webhookEvents = new[] { "completed" } })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "x", webhook = 42 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "x", webhook = "https://example.com/h", webhook_events_filter = "completed" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await world.AdminOf(host).PutAsync($"/api/v1/apps/{world.AppId}/webhook", new { url = "http://10.1.2.3/hook" })).Error(ErrorCatalog.p_common_inputinvalid, 400);

        // An end user's session cannot point the platform at a URL of its choosing.
        var session = (await app.PostAsync("/api/v1/sessions", new { endUserId = "u-1" })).Created();
        var user = host.Client.With(session.GetProperty("credential").GetString()!);
        (await user.PostAsync("/api/v1/predict/txt2img", new { prompt = "x", webhook = "https://example.com/hook" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await user.GetAsync("/api/v1/webhook-deliveries")).Error(ErrorCatalog.b_session_tokenforbidden, 403);

        Assert.Equal(0, (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
        Assert.Equal(0, (await app.GetAsync("/api/v1/webhook-deliveries")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task ThirtyHostileUrls_AreAllRefused_AndNothingConnects()
    {
        using var listener = new ConnectionCounter();
        var p = listener.Port;
        await using var redirector = await WebhookReceiver.StartAsync();
        redirector.Answer = (_, _) => 302;
        redirector.RedirectTo = $"http://127.0.0.1:{p}/";
        var config = Config([0], allowPrivate: false);
        config["Atelier:Webhooks:AllowedPrivateEndpoints:0"] = $"127.0.0.1:{redirector.BaseAddress.Port}";
        await using var host = await TestHost.StartAsync(config);
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);

        string[] hostile =
        [
            $"http://127.0.0.1:{p}/", $"http://127.1:{p}/", $"http://0177.0.0.1:{p}/", $"http://0x7f.0.0.1:{p}/", $"http://2130706433:{p}/",
            $"http://0x7f000001:{p}/", $"http://127.0.0.2:{p}/", $"http://127.255.255.254:{p}/", $"http://[::1]:{p}/", $"http://[0:0:0:0:0:0:0:1]:{p}/",
            $"http://[::ffff:127.0.0.1]:{p}/", $"http://[::ffff:7f00:1]:{p}/", $"http://0.0.0.0:{p}/", $"http://[::]:{p}/", $"http://0:{p}/",
            "http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", $"http://[fe80::1]:{p}/", $"http://10.0.0.1:{p}/",
            $"http://172.16.0.1:{p}/", $"http://192.168.1.1:{p}/", $"http://100.64.0.1:{p}/", "http://100.100.100.200/", $"http://[fc00::1]:{p}/",
            $"http://[::ffff:10.0.0.1]:{p}/", $"http://198.18.0.1:{p}/", $"http://224.0.0.1:{p}/",
            // Names: refused where it counts, on the address connected to.
            $"http://localhost:{p}/", $"http://LocalHost:{p}/hook",
            // Allowed itself, it answers with a redirect to loopback, which is not followed.
            redirector.Url("/to-loopback"),
        ];
        Assert.Equal(30, hostile.Length);

        var refusedAtSubmit = 0;
        var accepted = new List<(string Url, string Job)>();
        foreach (var url in hostile)
        {
            var r = await app.PostAsync("/api/v1/agents/default/jobs", new { input = new { prompt = "x", steps = 2 }, webhook = url, webhookEvents = new[] { "canceled" } });
            if (r.Status == HttpStatusCode.BadRequest)
            {
                r.Error(ErrorCatalog.p_common_inputinvalid, 400);
                refusedAtSubmit++;
                continue;
            }

            var job = r.Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
            (await app.PostAsync($"/api/v1/agents/default/jobs/{job}/cancel")).Ok();
            accepted.Add((url, job));
        }

        foreach (var (url, job) in accepted)
        {
            var d = await DeliveryOfAsync(app, job, x => x.GetProperty("state").GetString() != "pending");
            Assert.Equal("failed", d.GetProperty("state").GetString());
            Assert.Equal(ErrorCatalog.s_webhook_invokefail.Code, d.GetProperty("errorCode").GetString());
            var error = d.GetProperty("lastError").GetString()!;
            Assert.True(error.StartsWith("address refused", StringComparison.Ordinal) || (url.Contains("to-loopback", StringComparison.Ordinal) && d.GetProperty("lastStatus").GetInt32() == 302),
                $"{url}: {error}");
        }

        Assert.True(refusedAtSubmit >= 25, $"only {refusedAtSubmit} literal addresses were refused at submit");
        Assert.Single(redirector.Received);
        // Every message is recorded failed, after its last try: no connection can come later.
        Assert.Equal(0, listener.Connections);
    }

    [Fact]
    public async Task RetryDelays_FollowTheSchedule_WithJitter()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Answer = (_, _) => 500;
        await using var host = await TestHost.StartAsync(TestHost.LongTimerPeriods(new Dictionary<string, string>
        {
            ["Atelier:Webhooks:AllowPrivateNetworks"] = "true", ["Atelier:Webhooks:PollMilliseconds"] = "100", ["Atelier:Images:RetentionSweepMinutes"] = "600",
        }), fakeClock: true);
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var job = await SubmitAsync(app, receiver.Url("/slow"), ["canceled"]);
        (await app.PostAsync($"/api/v1/agents/default/jobs/{job}/cancel")).Ok();

        // The default schedule: at once, then 5 s, 5 min, 30 min later, each within 10 %.
        foreach (var (tries, seconds) in new[] { (1, 5.0), (2, 300.0), (3, 1800.0) })
        {
            var d = await DeliveryOfAsync(app, job, x => x.GetProperty("tries").GetInt32() == tries);
            Assert.Equal(10, d.GetProperty("maxTries").GetInt32());
            var at = d.GetProperty("attempts")[tries - 1].GetProperty("at").GetDateTime();
            var next = d.GetProperty("nextAttemptAt").GetDateTime();
            Assert.InRange((next - at).TotalSeconds, seconds * 0.9 - 0.01, seconds * 1.1 + 0.01);
            host.Clock!.Advance(TimeSpan.FromSeconds(seconds * 1.1 + 1));
        }

        await DeliveryOfAsync(app, job, x => x.GetProperty("tries").GetInt32() == 4);
        Assert.Equal(4, receiver.Received.Count);

        // A finished message leaves the log after the retention (30 days), a pending one does not.
        receiver.Answer = (_, _) => 200;
        var other = await SubmitAsync(app, receiver.Url("/kept"), ["canceled"]);
        (await app.PostAsync($"/api/v1/agents/default/jobs/{other}/cancel")).Ok();
        var done = await DeliveryOfAsync(app, other, x => x.GetProperty("state").GetString() == "delivered");
        host.Clock!.Advance(TimeSpan.FromDays(31));
        await Eventually.UntilAsync(async () => (await app.GetAsync($"/api/v1/webhook-deliveries/{done.GetProperty("id").GetString()}")).Status == HttpStatusCode.NotFound,
            "the finished message left the log");

        Assert.Equal(0, (await app.GetAsync($"/api/v1/webhook-deliveries?jobId={other}")).Ok().GetProperty("total").GetInt32());
        Assert.Equal(1, (await app.GetAsync($"/api/v1/webhook-deliveries?jobId={job}")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task StateChangeAndItsMessage_CommitTogether_OrNeither()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var host = await TestHost.StartAsync(Config([0]));
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var worker = await WorkerProtocol.RegisterAsync(host);
        var job = await SubmitAsync(app, receiver.Url("/atomic"), ["completed"]);
        Assert.Equal(job, (await WorkerProtocol.LeaseAsync(worker)).Ok().GetProperty("id").GetString());

        // The queue's completion inside a transaction that fails before its commit: neither the state nor the message stays.
        using (var scope = host.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
            var queue = scope.ServiceProvider.GetRequiredService<JobQueue>();
            await using var tx = await db.Database.BeginTransactionAsync();
            Assert.True(await queue.CompleteAsync(job, 1, """{"images":[]}""", TimeSpan.FromHours(1), CancellationToken.None));
            Assert.Equal(1, await db.WebhookDeliveries.IgnoreQueryFilters().CountAsync(d => d.JobId == job));
            await tx.RollbackAsync();
        }

        // Rolled back: no message exists, so the relay has nothing it could ever send.
        Assert.Equal("running", (await app.GetAsync($"/api/v1/agents/default/jobs/{job}")).Ok().GetProperty("state").GetString());
        Assert.Equal(0, (await app.GetAsync($"/api/v1/webhook-deliveries?jobId={job}")).Ok().GetProperty("total").GetInt32());
        Assert.Empty(receiver.Received);

        // Committed, both are there, and the message goes out.
        (await worker.PostAsync($"/api/v1/worker/jobs/{job}/complete", new { attempt = 1, result = new { images = Array.Empty<object>() } })).Ok();
        await DeliveryOfAsync(app, job, d => d.GetProperty("state").GetString() == "delivered");
        Assert.Single(receiver.On("/atomic"));
    }

    [Fact]
    public async Task DeletingTheApp_EndsItsUndeliveredMessages()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Answer = (_, _) => 503;
        await using var host = await TestHost.StartAsync(Config([0, 3600]));
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var second = (await admin.PostAsync("/api/v1/apps", new { name = "short-lived" })).Created().GetProperty("id").GetString()!;
        var token = (await admin.PostAsync($"/api/v1/apps/{second}/tokens", new { name = "backend", scopes = new[] { "app" } })).Created().GetProperty("secret").GetString()!;
        var app = host.Client.With(token);
        var job = await SubmitAsync(app, receiver.Url("/gone-app"), ["canceled"]);
        (await app.PostAsync($"/api/v1/agents/default/jobs/{job}/cancel")).Ok();
        var pending = await DeliveryOfAsync(admin, job, d => d.GetProperty("tries").GetInt32() == 1);
        Assert.Equal("pending", pending.GetProperty("state").GetString());

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/apps/{second}")).Status);
        var ended = await DeliveryOfAsync(admin, job, d => d.GetProperty("state").GetString() == "failed");
        Assert.Equal(ErrorCatalog.s_webhook_invokefail.Code, ended.GetProperty("errorCode").GetString());
        Assert.Equal("the app was deleted", ended.GetProperty("lastError").GetString());
        (await admin.GetAsync($"/api/v1/apps/{second}/webhook")).Error(ErrorCatalog.b_user_appnotfound, 404);
        Assert.Single(receiver.Received);
    }
}
