using System.Net;
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

/// <summary>
/// A tenant's safety patterns cannot burn the shared CPU: crafted catastrophic-backtracking patterns are matched without
/// backtracking (the prompt that would take a backtracking engine exponential time gets its answer), patterns that need
/// backtracking are refused when saved, the negative prompt is checked too, and a moderation answer is read with a cap.
/// </summary>
public class SafetyPatternTests
{
    private static object Body(string prompt, string? negative = null) => new { prompt, negative_prompt = negative, steps = 2 };

    [Fact]
    public async Task CatastrophicPatterns_AreMatchedWithoutBacktracking_AndAnotherTenantIsServed()
    {
        await using var host = await TestHost.StartAsync();
        var a = await Scenario.NewTenantAsync(host);
        var b = await Scenario.NewTenantAsync(host);
        // Nested quantifiers that a backtracking engine takes 2^n steps to give up on, against a run of a's that ends in '!'.
        string[] shapes = ["(a+)+", "(a|aa)+", "(a|a?)+", "(a*)*", "(\\w+\\s?)*"];
        var patterns = Enumerable.Range(0, 100).Select(i => $"^{shapes[i % shapes.Length]}q{{{(i / shapes.Length) + 1}}}$").ToArray();
        patterns[0] = "(a+)+$";
        (await a.AdminOf(host).PutAsync("/api/v1/safety-rules", new { patterns })).Ok();

        var evil = new string('a', 5000) + "!";
        // Before, every pattern hit its match timeout and the request was refused as checker_timeout; now each is checked and none matches.
        var job = (await a.AppOf(host).PostAsync("/api/v1/predict/txt2img", Body(evil, evil))).Ok(HttpStatusCode.Accepted);
        Assert.False(string.IsNullOrEmpty(job.GetProperty("taskId").GetString()));
        // The same patterns still refuse what they match, in the prompt and in the negative prompt.
        var matching = new string('a', 5000) + "qqq";
        Assert.Equal("pattern", (await a.AppOf(host).PostAsync("/api/v1/predict/txt2img", Body(matching))).Error(ErrorCatalog.b_agent_contentnotsafe, 422)
            .GetProperty("errCode").GetString());
        Assert.Equal("pattern", (await a.AppOf(host).PostAsync("/api/v1/predict/txt2img", Body("a lake", matching))).Error(ErrorCatalog.b_agent_contentnotsafe, 422)
            .GetProperty("errCode").GetString());
        // Another tenant, with no patterns, is served alongside; A's patterns are A's alone.
        for (var i = 0; i < 5; i++)
        {
            (await a.AppOf(host).PostAsync("/api/v1/predict/txt2img", Body(evil))).Ok(HttpStatusCode.Accepted);
            (await b.AppOf(host).PostAsync("/api/v1/predict/txt2img", Body(matching))).Ok(HttpStatusCode.Accepted);
        }

        Assert.Equal(5, (await b.AppOf(host).GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task PatternsThatNeedBacktracking_AreRefusedWhenSaved()
    {
        await using var host = await TestHost.StartAsync();
        var admin = (await Scenario.NewTenantAsync(host)).AdminOf(host);
        foreach (var pattern in new[] { "(a+)\\1", "foo(?=bar)", "(?<!x)y", "(?>a+)b", "(?(a)b|c)" })
        {
            var error = (await admin.PutAsync("/api/v1/safety-rules", new { patterns = new[] { "fine", pattern } })).Error(ErrorCatalog.p_common_inputinvalid, 400);
            Assert.Contains("patterns", error.GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
        }

        Assert.Empty((await admin.GetAsync("/api/v1/safety-rules")).Ok().GetProperty("patterns").EnumerateArray());
    }

    [Fact]
    public async Task AWordInTheNegativePrompt_IsRefused()
    {
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Safety:Words:0"] = "forbidden" });
        var world = await Scenario.NewTenantAsync(host);
        (await world.AdminOf(host).PutAsync("/api/v1/safety-rules", new { words = new[] { "graffiti" } })).Ok();
        var app = world.AppOf(host);
        foreach (var word in new[] { "forbidden", "Graffiti" })
        {
            var error = (await app.PostAsync("/api/v1/predict/txt2img", Body("a calm sea", $"blurry, {word}"))).Error(ErrorCatalog.b_agent_contentnotsafe, 422);
            Assert.Equal("word", error.GetProperty("errCode").GetString());
            Assert.Contains("negative prompt", error.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(0, (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task AHugeModerationAnswer_IsReadOnlyUpToTheCap_AndFailsClosed()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var moderation = builder.Build();
        // A valid answer after 8 MiB of JSON whitespace: without a cap it is read whole and says "not flagged".
        moderation.MapPost("/huge", async (HttpContext http) =>
        {
            http.Response.ContentType = "application/json";
            var spaces = new byte[64 * 1024];
            Array.Fill(spaces, (byte)' ');
            for (var i = 0; i < 128 && !http.RequestAborted.IsCancellationRequested; i++)
            {
                await http.Response.Body.WriteAsync(spaces, http.RequestAborted);
            }

            await http.Response.WriteAsync("{\"flagged\": false}", http.RequestAborted);
        });
        moderation.MapPost("/small", () => Results.Json(new { flagged = false }));
        await moderation.StartAsync();
        await using var _ = moderation;
        var baseUri = new Uri(moderation.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Safety:AllowPrivateNetworks"] = "true", ["Atelier:Safety:ModerationTimeoutSeconds"] = "30",
        });
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var app = world.AppOf(host);
        (await admin.PutAsync("/api/v1/safety-rules", new { moderationUrl = new Uri(baseUri, "/small").ToString() })).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body("a quiet lake"))).Ok(HttpStatusCode.Accepted);

        (await admin.PutAsync("/api/v1/safety-rules", new { moderationUrl = new Uri(baseUri, "/huge").ToString() })).Ok();
        var error = (await app.PostAsync("/api/v1/predict/txt2img", Body("a quiet lake"))).Error(ErrorCatalog.b_agent_contentnotsafe, 422);
        Assert.Equal("checker_failed", error.GetProperty("errCode").GetString());
        Assert.Contains("larger than 65536 bytes", error.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
    }
}
