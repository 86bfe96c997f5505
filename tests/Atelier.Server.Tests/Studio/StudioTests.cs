using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Studio;

/// <summary>
/// The studio's server side: live previews from the worker's heartbeats, the studio page and its assets, and the
/// dedicated studio (a session's own instance, started for it, served through the router, stopped at its end). What a
/// person sees in the page is tested in a real browser (tests/Atelier.Browser.Tests).
/// </summary>
public class StudioTests
{
    private static readonly Dictionary<string, string> Fast = new()
    {
        ["Atelier:Sessions:StudioReapIntervalSeconds"] = "1",
        ["Atelier:Sessions:StudioFetchTimeoutSeconds"] = "20",
    };

    [Fact]
    public async Task LivePreview_FromTheWorkersHeartbeats_IsServedWhileTheTaskRuns_ToItsCallerOnly_AndGoesWithTheResult()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var engine = new GatedEngine();
        await using var worker = await InProcessWorker.StartAsync(host, adapter: engine);
        var app = world.AppOf(host);
        var task = (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "a lantern", steps = 10, width = 64, height = 64 })).Ok(HttpStatusCode.Accepted)
            .GetProperty("taskId").GetString()!;

        var job = await Eventually.ValueAsync(async () => (await app.GetAsync($"/api/v1/tasks/{task}")).Ok(),
            j => j.GetProperty("progress").TryGetProperty("previewStep", out var s) && s.ValueKind == JsonValueKind.Number, "the task shows a live preview");
        Assert.Equal(GatedEngine.HeldAt, job.GetProperty("progress").GetProperty("previewStep").GetInt32());
        Assert.Equal("running", job.GetProperty("state").GetString());

        using var preview = await GetAsync(host, world.AppToken, $"/api/v1/tasks/{task}/preview");
        Assert.Equal(HttpStatusCode.OK, preview.StatusCode);
        Assert.Equal("image/png", preview.Content.Headers.ContentType?.MediaType);
        Assert.Equal(GatedEngine.Preview, await preview.Content.ReadAsByteArrayAsync());
        Assert.Equal("no-store", preview.Headers.CacheControl?.ToString());
        // The jobs API serves the same picture; another tenant cannot see the task at all.
        using var viaJobs = await GetAsync(host, world.AppToken, $"/api/v1/agents/default/jobs/{task}/preview");
        Assert.Equal(GatedEngine.Preview, await viaJobs.Content.ReadAsByteArrayAsync());
        var other = await Scenario.NewTenantAsync(host);
        (await other.AppOf(host).GetAsync($"/api/v1/tasks/{task}/preview")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        // A1111's progress shows it as current_image (base64), unless asked to skip it.
        var progress = (await app.GetAsync("/sdapi/v1/progress")).Json;
        Assert.Equal(Convert.ToBase64String(GatedEngine.Preview), progress.GetProperty("current_image").GetString());
        Assert.Equal(JsonValueKind.Null, (await app.GetAsync("/sdapi/v1/progress?skip_current_image=true")).Json.GetProperty("current_image").ValueKind);

        engine.Release();
        await Eventually.UntilAsync(async () => (await app.GetAsync($"/api/v1/tasks/{task}")).Ok().GetProperty("state").GetString() == "succeeded", "the task succeeded");
        var done = (await app.GetAsync($"/api/v1/tasks/{task}")).Ok();
        Assert.Equal(JsonValueKind.Null, done.GetProperty("progress").GetProperty("previewStep").ValueKind);
        var gone = (await app.GetAsync($"/api/v1/tasks/{task}/preview")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        Assert.Equal(ErrCodes.NoPreview, gone.GetProperty("errCode").GetString());
    }

    [Fact]
    public async Task Heartbeat_WithAPreviewThatIsNotAPng_IsRefused()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var worker = await WorkerProtocol.RegisterAsync(host);
        (await world.AppOf(host).PostAsync("/api/v1/predict/txt2img", new { prompt = "x", steps = 4, width = 64, height = 64 })).Ok(HttpStatusCode.Accepted);
        var lease = (await WorkerProtocol.LeaseAsync(worker)).Ok();
        var jobId = lease.GetProperty("id").GetString()!;
        var attempt = lease.GetProperty("attempt").GetInt32();

        var junk = (await worker.PostAsync($"/api/v1/worker/jobs/{jobId}/heartbeat", new { attempt, step = 1, steps = 4, fraction = 0.25, preview = Convert.ToBase64String("GIF89a not a png"u8.ToArray()) }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Contains("preview", junk.GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
        (await worker.PostAsync($"/api/v1/worker/jobs/{jobId}/heartbeat", new { attempt, step = 1, steps = 4, fraction = 0.25, preview = new string('A', 400_000) }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await worker.PostAsync($"/api/v1/worker/jobs/{jobId}/heartbeat", new { attempt, step = 2, steps = 4, fraction = 0.5, preview = Convert.ToBase64String(GatedEngine.Preview) })).Ok();
        using var preview = await GetAsync(host, world.AppToken, $"/api/v1/tasks/{jobId}/preview");
        Assert.Equal("2", preview.Headers.GetValues("X-Preview-Step").Single());
    }

    [Fact]
    public async Task StudioPage_IsServedForAnySession_WithAStrictPolicy_AndItsAssets()
    {
        await using var host = await TestHost.StartAsync();
        using var page = await host.Client.Http.GetAsync("/studio/ses_anything");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.Contains("script-src 'self'", csp, StringComparison.Ordinal);
        Assert.Equal("DENY", page.Headers.GetValues("X-Frame-Options").Single());
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("/studio/assets/studio.js", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<script>", html, StringComparison.Ordinal); // no inline script

        using var js = await host.Client.Http.GetAsync("/studio/assets/studio.js");
        Assert.Equal("text/javascript", js.Content.Headers.ContentType?.MediaType);
        Assert.Contains("sessionStorage", await js.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        (await host.Client.GetAsync("/studio/assets/../../etc/passwd")).Error(ErrorCatalog.p_common_inputinvalid, 404);
        (await host.Client.GetAsync("/studio/assets/other.js")).Error(ErrorCatalog.p_common_inputinvalid, 404);
    }

    [Fact]
    public async Task DedicatedSession_GetsItsOwnInstance_ItsPageWithTheSessionInjected_OnlyThroughItsStudio_StoppedAtItsEnd()
    {
        await using var host = await TestHost.StartAsync(Fast);
        var world = await Scenario.NewTenantAsync(host);
        var template = await TemplateAsync(host, new Dictionary<string, string> { ["TEST_HTML"] = "1", ["TEST_GREETING"] = "{{greeting}}" });
        var admin = world.AdminOf(host);
        (await admin.PostAsync("/api/v1/resource-configs", new { name = "bad", engine = "a1111", instanceType = "gpu", functionTemplate = "ftp_none" }))
            .Error(ErrorCatalog.p_function_invalidtemplateid);
        var rc = (await admin.PostAsync("/api/v1/resource-configs", new
        {
            name = "own-ui", engine = "a1111", instanceType = "gpu", functionTemplate = template, instanceParameters = new { greeting = "bonjour" },
        })).Created();
        Assert.Equal(template, rc.GetProperty("functionTemplateId").GetString());
        var app = world.AppOf(host);
        var (id, credential) = await SessionAsync(app, rc.GetProperty("id").GetString());
        var (otherId, otherCredential) = await SessionAsync(app, rc.GetProperty("id").GetString());
        var (sharedId, sharedCredential) = await SessionAsync(app, null);

        Assert.True((await host.Client.With(credential).GetAsync("/api/v1/session")).Ok().GetProperty("dedicated").GetBoolean());
        Assert.False((await host.Client.With(sharedCredential).GetAsync("/api/v1/session")).Ok().GetProperty("dedicated").GetBoolean());
        // Only the session itself connects to its studio; a session on shared compute has no instance to start.
        (await host.Client.With(otherCredential).PostAsync($"/studio/{id}/connect")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await host.Client.With(world.AppToken).PostAsync($"/studio/{id}/connect")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await host.Client.With(sharedCredential).PostAsync($"/studio/{sharedId}/connect")).Error(ErrorCatalog.p_common_inputinvalid, 409);

        using var raw = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = host.BaseAddress };
        using var connect = new HttpRequestMessage(HttpMethod.Post, $"/studio/{id}/connect");
        connect.Headers.Authorization = new AuthenticationHeaderValue("Bearer", credential);
        using var connected = await raw.SendAsync(connect);
        Assert.Equal(HttpStatusCode.OK, connected.StatusCode);
        var cookie = connected.Headers.GetValues("Set-Cookie").Single();
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains($"path=/studio/{id}/", cookie, StringComparison.OrdinalIgnoreCase);
        var pair = cookie.Split(';')[0];

        // The instance's page, with the session injected; its other files come through the router too.
        using var page = await SendAsync(raw, $"/studio/{id}/ui/", pair);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("bonjour", html, StringComparison.Ordinal);
        Assert.Contains($"<p id=\"session\">{id}</p>", html, StringComparison.Ordinal);
        using var css = await SendAsync(raw, $"/studio/{id}/ui/ui.css", pair);
        Assert.Equal("text/css", css.Content.Headers.ContentType?.MediaType);
        // The instance never sees the credential, as a cookie or a header; it is told the session.
        using var seen = await SendAsync(raw, $"/studio/{id}/ui/headers", pair);
        var headers = JsonDocument.Parse(await seen.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(id, headers.GetProperty("X-Atelier-Session-Id").GetString());
        Assert.False(headers.TryGetProperty("Cookie", out _));
        Assert.False(headers.TryGetProperty("Authorization", out _));
        Assert.DoesNotContain(credential, headers.GetRawText(), StringComparison.Ordinal);
        // Without the cookie, or with another session's, the UI is refused; the instance is not reachable by the router.
        (await ApiResult.ReadAsync(await SendAsync(raw, $"/studio/{id}/ui/", null))).Error(ErrorCatalog.p_common_apitokenrequired);
        (await ApiResult.ReadAsync(await SendAsync(raw, $"/studio/{id}/ui/", $"atelier_studio={otherCredential}"))).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        var fn = $"/fn/atelier-studio/{id.Replace('_', '-')}/";
        Assert.Equal(HttpStatusCode.NotFound, (await host.Client.With(credential).GetAsync(fn)).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await world.AdminOf(host).GetAsync(fn)).Status);
        (await admin.PostAsync("/api/v1/services", new { name = "atelier-studio" })).Error(ErrorCatalog.p_common_inputinvalid, 409);
        var functions = (await admin.GetAsync("/api/v1/services/atelier-studio/functions")).Ok();
        Assert.Equal(1, functions.GetProperty("total").GetInt32());

        // The session ends: its instance is stopped and its studio refused.
        (await app.PostAsync($"/api/v1/sessions/{id}/end")).Ok();
        await Eventually.UntilAsync(async () => (await admin.GetAsync("/api/v1/services/atelier-studio/functions")).Ok().GetProperty("total").GetInt32() == 0,
            "the ended session's studio instance is deleted");
        (await ApiResult.ReadAsync(await SendAsync(raw, $"/studio/{id}/ui/", pair))).Error(ErrorCatalog.b_session_sessionexpired);
        _ = otherId;
    }

    [Fact]
    public async Task DedicatedStudio_WhoseInstanceAnswersJunk_OrIsDown_IsHtmlContentGetError()
    {
        await using var host = await TestHost.StartAsync(Fast);
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var app = world.AppOf(host);

        // The instance answers JSON, not a page.
        var json = await TemplateAsync(host, new Dictionary<string, string>());
        var rc = (await admin.PostAsync("/api/v1/resource-configs", new { name = "json-ui", engine = "a1111", instanceType = "gpu", functionTemplate = json })).Created();
        var (id, credential) = await SessionAsync(app, rc.GetProperty("id").GetString());
        (await host.Client.With(credential).PostAsync($"/studio/{id}/connect")).Ok();
        var e = (await host.Client.With(credential).GetAsync($"/studio/{id}/ui/")).Error(ErrorCatalog.b_html_htmlcontentgeterror, 502);
        Assert.Equal("html_type", e.GetProperty("errCode").GetString());

        // The instance answers an error for its page.
        var failing = await TemplateAsync(host, new Dictionary<string, string> { ["TEST_HTML"] = "1", ["TEST_ROOT_STATUS"] = "500" });
        var rc2 = (await admin.PostAsync("/api/v1/resource-configs", new { name = "failing-ui", engine = "a1111", instanceType = "gpu", functionTemplate = failing })).Created();
        var (id2, credential2) = await SessionAsync(app, rc2.GetProperty("id").GetString());
        (await host.Client.With(credential2).PostAsync($"/studio/{id2}/connect")).Ok();
        e = (await host.Client.With(credential2).GetAsync($"/studio/{id2}/ui/")).Error(ErrorCatalog.b_html_htmlcontentgeterror, 502);
        Assert.Equal("html_status", e.GetProperty("errCode").GetString());

        // An instance that dies as it starts cannot be made at all: the connect says so, and nothing is left behind.
        var dead = await TemplateAsync(host, new Dictionary<string, string> { ["TEST_EXIT_AT_START"] = "3" });
        var rc3 = (await admin.PostAsync("/api/v1/resource-configs", new { name = "dead-ui", engine = "a1111", instanceType = "gpu", functionTemplate = dead })).Created();
        var (id3, credential3) = await SessionAsync(app, rc3.GetProperty("id").GetString());
        (await host.Client.With(credential3).PostAsync($"/studio/{id3}/connect")).Error(ErrorCatalog.s_function_createfunctionerror);
        e = (await host.Client.With(credential3).GetAsync($"/studio/{id3}/ui/")).Error(ErrorCatalog.b_html_htmlcontentgeterror, 502);
        Assert.Equal("instance_missing", e.GetProperty("errCode").GetString());
    }

    private static async Task<string> TemplateAsync(TestHost host, Dictionary<string, string> environment) =>
        (await host.Admin().PostAsync("/api/v1/platform/function-templates", new
        {
            name = "studio-ui-" + Guid.NewGuid().ToString("N")[..8], engine = "custom", command = FunctionInstance.Dotnet, args = new[] { FunctionInstance.DllPath },
            environment, healthPath = "/health", timeoutSeconds = 60,
            parametersSchema = JsonDocument.Parse("""{"type":"object","properties":{"greeting":{"type":"string"}}}""").RootElement,
        })).Created().GetProperty("id").GetString()!;

    private static async Task<(string Id, string Credential)> SessionAsync(ApiClient app, string? resourceConfigId)
    {
        var created = (await app.PostAsync("/api/v1/sessions", new { endUserId = "painter", resourceConfigId, expiredAt = DateTime.UtcNow.AddHours(1) })).Created();
        return (created.GetProperty("session").GetProperty("id").GetString()!, created.GetProperty("credential").GetString()!);
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient http, string path, string? cookie)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", cookie);
        }

        return http.SendAsync(request);
    }

    private static async Task<HttpResponseMessage> GetAsync(TestHost host, string bearer, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return await host.Client.Http.SendAsync(request);
    }
}
