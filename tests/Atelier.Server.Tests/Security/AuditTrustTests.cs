using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Security;

/// <summary>
/// The smaller holes of issue 12 (item 13) about trust: what is audited and where, who the operator of a tenant admin
/// call may be, whose request id the audit log keeps, where an upload's secret goes, what an end user sees of a model's
/// source, and what A1111's model list costs.
/// </summary>
public class AuditTrustTests
{
    private static async Task<IReadOnlyList<JsonElement>> AuditAsync(ApiClient client, string path = "/api/v1/audit-log") =>
        [.. (await client.GetAsync(path + "?pageSize=100")).Ok().GetProperty("items").EnumerateArray()];

    [Fact]
    public async Task WebhookAndCreditChanges_AreInTheTenantsAuditLog()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host, "op-hooks");
        var platform = host.Admin("op-billing").WithHeader("X-Tenant-Id", world.TenantId);
        (await admin.PutAsync($"/api/v1/apps/{world.AppId}/webhook", new { url = "https://hooks.example.com/atelier", events = new[] { "completed" } })).Ok();
        (await admin.PostAsync($"/api/v1/apps/{world.AppId}/webhook/secret-rotations", new { overlapSeconds = 60 })).Ok();
        (await platform.PutAsync("/api/v1/entitlements/tenant", new { credits = 10 })).Ok();
        (await platform.PostAsync("/api/v1/entitlements/tenant/credits", new { add = 5 })).Ok();
        (await admin.PutAsync($"/api/v1/entitlements/{world.AppId}", new { credits = 4 })).Ok();
        (await admin.PostAsync($"/api/v1/entitlements/{world.AppId}/credits", new { add = -1 })).Ok();

        var log = await AuditAsync(admin);
        string[] Actions(string op) => [.. log.Where(e => e.GetProperty("operatorId").GetString() == op).Select(e => e.GetProperty("action").GetString()!).Order()];
        Assert.Equal(["app.webhook.rotate_secret", "app.webhook.update", "entitlement.credits.add", "entitlement.put"], Actions("op-hooks"));
        Assert.Equal(["entitlement.credits.add", "entitlement.put"], Actions("op-billing"));
        Assert.All(log, e => Assert.Equal(world.TenantId, e.GetProperty("tenantId").GetString()));
        // Not in the platform's own log.
        Assert.DoesNotContain(await AuditAsync(host.Admin(), "/api/v1/platform/audit-log"), e => e.GetProperty("resourceId").GetString() == world.AppId);
    }

    [Fact]
    public async Task TenantAdminOperator_MustBeRegistered_OnceTheTenantHasOperators()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var other = await Scenario.NewTenantAsync(host);
        // No operators yet: any well-formed id (so the first can register itself).
        (await world.AdminOf(host, "alice").PostAsync("/api/v1/operators", new { id = "alice", name = "Alice" })).Created();
        (await other.AdminOf(host, "bob").PostAsync("/api/v1/operators", new { id = "bob", name = "Bob" })).Created();

        var mallory = (await world.AdminOf(host, "mallory").PostAsync("/api/v1/roles", new { name = "by-mallory" })).Error(ErrorCatalog.b_operator_invalidoperatoridnul, 403);
        Assert.Equal("operator_not_registered", mallory.GetProperty("errCode").GetString());
        (await world.AdminOf(host, "bob").PostAsync("/api/v1/roles", new { name = "by-bob" })).Error(ErrorCatalog.b_operator_invalidoperatoridnul, 403);
        (await world.AdminOf(host, "alice").PostAsync("/api/v1/roles", new { name = "by-alice" })).Created();
        // Reads name nobody; the platform admin's operators are the platform's people.
        (await world.AdminOf(host, "mallory").GetAsync("/api/v1/roles")).Ok();
        (await host.Admin("op-platform").WithHeader("X-Tenant-Id", world.TenantId).PostAsync("/api/v1/roles", new { name = "by-platform" })).Created();
        Assert.DoesNotContain(await AuditAsync(world.AdminOf(host)), e => e.GetProperty("operatorId").GetString() is "mallory" or "bob");
    }

    [Fact]
    public async Task AuditLog_KeepsOurRequestId_AndTheClientsBesideIt()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var created = await admin.WithHeader("X-Request-Id", "client-chosen-0001").PostAsync("/api/v1/apps", new { name = "traced" });
        var appId = created.Created().GetProperty("id").GetString();
        Assert.StartsWith("req_", created.RequestId, StringComparison.Ordinal);
        var entry = (await AuditAsync(admin)).Single(e => e.GetProperty("resourceId").GetString() == appId);
        Assert.Equal(created.RequestId, entry.GetProperty("requestId").GetString());
        Assert.Equal("client-chosen-0001", entry.GetProperty("clientRequestId").GetString());

        // A client cannot make two calls share an id in the log.
        var again = await admin.WithHeader("X-Request-Id", "client-chosen-0001").PostAsync("/api/v1/apps", new { name = "traced-2" });
        var second = again.Created().GetProperty("id").GetString();
        var ids = (await AuditAsync(admin)).Where(e => e.GetProperty("resourceId").GetString() is { } r && (r == appId || r == second))
            .Select(e => e.GetProperty("requestId").GetString()).ToList();
        Assert.Equal(2, ids.Distinct().Count());
    }

    [Fact]
    public async Task UploadSecret_GoesInAHeader_NeverInTheUrl()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var bytes = ModelFiles.Lora("header");
        var upload = (await admin.PostAsync("/api/v1/uploads", new { type = "lora", fileName = "h.safetensors", size = bytes.Length })).Created();
        var url = upload.GetProperty("url").GetString()!;
        var secret = upload.GetProperty("headers").GetProperty("X-Upload-Secret").GetString()!;
        Assert.StartsWith("atu_", secret, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, url, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", url, StringComparison.Ordinal);

        // The old form, the secret in the query string: refused before anything is read, and the upload is still open.
        using (var query = new HttpRequestMessage(HttpMethod.Put, url + "?secret=" + secret) { Content = new ByteArrayContent(bytes) })
        {
            var refused = await ApiResult.ReadAsync(await admin.Http.SendAsync(query));
            Assert.Equal("secret_in_query", refused.Error(ErrorCatalog.p_common_inputinvalid, 400).GetProperty("errCode").GetString());
        }

        Assert.Equal("pending", (await admin.GetAsync($"/api/v1/uploads/{upload.GetProperty("id").GetString()}")).Ok().GetProperty("state").GetString());
        using var put = new HttpRequestMessage(HttpMethod.Put, url) { Content = new ByteArrayContent(bytes) };
        put.Headers.Add("X-Upload-Secret", secret);
        Assert.Equal("stored", (await ApiResult.ReadAsync(await admin.Http.SendAsync(put))).Ok().GetProperty("state").GetString());
    }

    [Fact]
    public async Task Sessions_NeverSeeModelSourceUrls()
    {
        await using var files = await FileServer.StartAsync();
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Models:AllowPrivateNetworks"] = "true" });
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var url = files.Add($"private-{Guid.NewGuid():N}.safetensors", ModelFiles.Lora("source")) + "?token=mirror-credential";
        var model = await Library.ModelAsync(admin, "lora");
        var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new
        {
            name = "v1", files = new[] { new { aliasName = "style.safetensors", url, primary = true } },
        })).Created();
        var versionId = version.GetProperty("id").GetString()!;
        await Library.WaitForDownloadAsync(admin, version.GetProperty("files")[0].GetProperty("id").GetString()!, Library.Stored);

        Assert.Equal(url, (await admin.GetAsync($"/api/v1/model-versions/{versionId}/access")).Ok().GetProperty("files")[0].GetProperty("sourceUrl").GetString());
        var session = (await world.AppOf(host).PostAsync("/api/v1/sessions", new { endUserId = "u-9", expiredAt = DateTime.UtcNow.AddHours(1) })).Created();
        var user = host.Client.With(session.GetProperty("credential").GetString());
        var seen = await user.GetAsync($"/api/v1/model-versions/{versionId}/access");
        Assert.Equal(JsonValueKind.Null, seen.Ok().GetProperty("files")[0].GetProperty("sourceUrl").ValueKind);
        Assert.DoesNotContain("mirror-credential", seen.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SdModels_CostsTheSameQueries_ForTwoModelsAndForTwenty()
    {
        using var counter = new QueryCounter();
        await using var host = await TestHost.StartAsync(fakeClock: true);
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var app = world.AppOf(host);
        var demo = (await app.GetAsync("/sdapi/v1/sd-models")).Json[0].GetProperty("sha256").GetString();
        async Task AddModelsAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                var model = await Library.ModelAsync(admin, "onnx");
                var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new { name = "v1" })).Created().GetProperty("id").GetString()!;
                (await admin.PostAsync($"/api/v1/model-versions/{version}/files", new { aliasName = "model.onnx", sha256 = demo, primary = true })).Created();
            }
        }

        async Task<(int Models, int Queries)> ListAsync()
        {
            var trace = ActivityTraceId.CreateRandom();
            var listed = await app.WithHeader("traceparent", $"00-{trace}-{ActivitySpanId.CreateRandom()}-01").GetAsync("/sdapi/v1/sd-models");
            Assert.Equal(HttpStatusCode.OK, listed.Status);
            return (listed.Json.GetArrayLength(), counter.Of(trace));
        }

        await AddModelsAsync(1);
        await ListAsync(); // the credential and tenant checks are remembered after this
        var few = await ListAsync();
        await AddModelsAsync(18);
        var many = await ListAsync();
        Assert.Equal((2, 20), (few.Models, many.Models));
        Assert.InRange(few.Queries, 1, 4);
        Assert.Equal(few.Queries, many.Queries);
    }

    /// <summary>
    /// Counts the database commands EF Core runs per trace: the server's request activity takes the trace id of the
    /// request's <c>traceparent</c>, and every command of that request runs under it (whatever else runs meanwhile).
    /// </summary>
    private sealed class QueryCounter : IObserver<DiagnosticListener>, IObserver<KeyValuePair<string, object?>>, IDisposable
    {
        private readonly ActivityListener _activities;
        private readonly ConcurrentBag<IDisposable> _subscriptions = [];
        private readonly ConcurrentDictionary<ActivityTraceId, int> _counts = new();

        public QueryCounter()
        {
            _activities = new ActivityListener
            {
                ShouldListenTo = s => s.Name == "Microsoft.AspNetCore",
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            };
            ActivitySource.AddActivityListener(_activities);
            _subscriptions.Add(DiagnosticListener.AllListeners.Subscribe(this));
        }

        public int Of(ActivityTraceId trace) => _counts.GetValueOrDefault(trace);

        public void OnNext(DiagnosticListener value)
        {
            if (value.Name == "Microsoft.EntityFrameworkCore")
            {
                _subscriptions.Add(value.Subscribe(this, name => name == "Microsoft.EntityFrameworkCore.Database.Command.CommandExecuted"));
            }
        }

        public void OnNext(KeyValuePair<string, object?> value)
        {
            if (Activity.Current is { } activity)
            {
                _counts.AddOrUpdate(activity.TraceId, 1, (_, n) => n + 1);
            }
        }

        public void OnCompleted()
        {
        }

        public void OnError(Exception error)
        {
        }

        public void Dispose()
        {
            foreach (var s in _subscriptions)
            {
                s.Dispose();
            }

            _activities.Dispose();
        }
    }
}
