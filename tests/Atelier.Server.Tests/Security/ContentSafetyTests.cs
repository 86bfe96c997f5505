using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Atelier.Server.Tests.Security;

/// <summary>Content safety through the API: platform and tenant rules, and a moderation endpoint on loopback that speaks the protocol.</summary>
public class ContentSafetyTests
{
    private static async Task<(WebApplication App, Uri Base)> ModerationAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        app.MapPost("/moderate", async (HttpContext http) =>
        {
            var body = await JsonDocument.ParseAsync(http.Request.Body);
            var input = body.RootElement.GetProperty("input").GetString()!;
            // Prompts with "dragon" are flagged; so are the images of prompts with "ocean" (PNGs, checked by their signature).
            var images = body.RootElement.TryGetProperty("images", out var list) ? list.EnumerateArray().Select(i => Convert.FromBase64String(i.GetString()!)).ToList() : [];
            var flagged = input.Contains("dragon", StringComparison.OrdinalIgnoreCase)
                          || (images.Count > 0 && images.All(i => i[1] == (byte)'P') && input.Contains("ocean", StringComparison.OrdinalIgnoreCase));
            return Results.Json(new { results = new[] { new { flagged } } });
        });
        // Never answers: only the checker giving up (its timeout aborts the request) or the fake's own stop ends the call.
        app.MapPost("/slow", async (HttpContext http, Microsoft.Extensions.Hosting.IHostApplicationLifetime lifetime) =>
        {
            using var over = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, lifetime.ApplicationStopping);
            var ended = new TaskCompletionSource();
            using var registration = over.Token.Register(() => ended.TrySetResult());
            await ended.Task;
            return Results.Json(new { flagged = false });
        });
        app.MapPost("/broken", () => Results.StatusCode(500));
        app.MapPost("/junk", () => Results.Text("hello"));
        await app.StartAsync();
        return (app, new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()));
    }

    private static object Body(string prompt) => new { prompt, steps = 2 };

    [Fact]
    public async Task PlatformAndTenantRules_RefuseBeforeQueueing()
    {
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Safety:Words:0"] = "forbidden", ["Atelier:Safety:Patterns:0"] = "blood\\s*bath" });
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var refused = (await app.PostAsync("/api/v1/predict/txt2img", Body("a Forbidden garden"))).Error(ErrorCatalog.b_agent_contentnotsafe, 422);
        Assert.Equal("word", refused.GetProperty("errCode").GetString());
        Assert.Equal("pattern", (await app.PostAsync("/sdapi/v1/txt2img", Body("a bloodbath at noon"))).Error(ErrorCatalog.b_agent_contentnotsafe, 422).GetProperty("errCode").GetString());
        (await app.PostAsync("/api/v1/predict/txt2img", Body("the forbiddenness of it"))).Ok(HttpStatusCode.Accepted); // a whole word only
        (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "calm", negative_prompt = "forbidden" })).Error(ErrorCatalog.b_agent_contentnotsafe, 422); // an engine reads it too

        var admin = world.AdminOf(host);
        (await admin.PutAsync("/api/v1/safety-rules", new { words = new[] { "graffiti", "禁止词" }, patterns = new[] { "^spam+$" } })).Ok();
        Assert.Equal("word", (await app.PostAsync("/api/v1/predict/txt2img", Body("Graffiti on a wall"))).Error(ErrorCatalog.b_agent_contentnotsafe, 422).GetProperty("errCode").GetString());
        Assert.Equal("word", (await app.PostAsync("/api/v1/predict/txt2img", Body("一个禁止词的例子"))).Error(ErrorCatalog.b_agent_contentnotsafe, 422).GetProperty("errCode").GetString());
        Assert.Equal("pattern", (await app.PostAsync("/api/v1/predict/txt2img", Body("spammm"))).Error(ErrorCatalog.b_agent_contentnotsafe, 422).GetProperty("errCode").GetString());
        Assert.Equal(1, (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
        // Another tenant's rules are its own.
        var other = await Scenario.NewTenantAsync(host);
        (await other.AppOf(host).PostAsync("/api/v1/predict/txt2img", Body("Graffiti on a wall"))).Ok(HttpStatusCode.Accepted);
        // Rules are checked when saved.
        (await admin.PutAsync("/api/v1/safety-rules", new { patterns = new[] { "(unclosed" } })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await admin.PutAsync("/api/v1/safety-rules", new { words = new[] { "" } })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PutAsync("/api/v1/safety-rules", new { words = new[] { "x" } })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
    }

    [Fact]
    public async Task ModerationEndpoint_Flags_AndFailsClosed()
    {
        var (moderation, baseUri) = await ModerationAsync();
        await using var _ = moderation;
        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Safety:AllowPrivateNetworks"] = "true", ["Atelier:Safety:ModerationTimeoutSeconds"] = "1",
        });
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var app = world.AppOf(host);
        (await admin.PutAsync("/api/v1/safety-rules", new { moderationUrl = new Uri(baseUri, "/moderate").ToString() })).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body("a quiet lake"))).Ok(HttpStatusCode.Accepted);
        Assert.Equal("moderation", (await app.PostAsync("/api/v1/predict/txt2img", Body("a red dragon"))).Error(ErrorCatalog.b_agent_contentnotsafe, 422).GetProperty("errCode").GetString());

        foreach (var (path, reason) in new[] { ("/slow", "checker_timeout"), ("/broken", "checker_failed"), ("/junk", "checker_failed") })
        {
            (await admin.PutAsync("/api/v1/safety-rules", new { moderationUrl = new Uri(baseUri, path).ToString() })).Ok();
            var error = (await app.PostAsync("/api/v1/predict/txt2img", Body("a quiet lake"))).Error(ErrorCatalog.b_agent_contentnotsafe, 422);
            Assert.Equal(reason, error.GetProperty("errCode").GetString());
            Assert.Contains("fails closed", error.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(1, (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task GeneratedImages_AreModerated_AndRefusedOnesAreNeverServed()
    {
        var (moderation, baseUri) = await ModerationAsync();
        await using var _ = moderation;
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Safety:AllowPrivateNetworks"] = "true" });
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, "noop");
        (await world.AdminOf(host).PutAsync("/api/v1/safety-rules", new { moderationUrl = new Uri(baseUri, "/moderate").ToString() })).Ok();
        var app = world.AppOf(host);
        Assert.Equal(HttpStatusCode.OK, (await app.PostAsync("/sdapi/v1/txt2img", Body("a mountain"))).Status);
        var error = (await app.PostAsync("/sdapi/v1/txt2img", Body("an ocean at night"))).Error(ErrorCatalog.b_agent_contentnotsafe, 422);
        Assert.Contains("moderation_image", error.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        // Only the mountain's image is in the library; the refused one's bytes are gone from storage.
        Assert.Equal(1, (await app.GetAsync("/api/v1/images")).Ok().GetProperty("total").GetInt32());
        var failed = (await app.GetAsync("/api/v1/agents/default/jobs?state=failed")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;
        Assert.Empty(Directory.GetFiles(Path.Combine(host.Database.Folder, "data", "objects", "images", world.TenantId, failed), "*.png"));
    }

    [Fact]
    public async Task ModerationEndpoint_OnAPrivateAddress_IsRefused_ByDefault()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        (await world.AdminOf(host).PutAsync("/api/v1/safety-rules", new { moderationUrl = "http://127.0.0.1:9/moderate" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
    }
}
