using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.Playwright;

namespace Atelier.Browser.Tests;

/// <summary>
/// The studio as an end user meets it: the URL a session hands out, opened in headless Chromium against a real server
/// and a worker. The credential travels in the URL fragment only: it must never be in a request URL or a log line.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class StudioTests(Browser browser)
{
    private static async Task<(string Id, string Credential, string Url)> SessionAsync(TestHost host, TenantWorld world, DateTimeOffset expiredAt)
    {
        var created = (await world.AppOf(host).PostAsync("/api/v1/sessions", new { endUserId = "painter", expiredAt })).Created();
        return (created.GetProperty("session").GetProperty("id").GetString()!, created.GetProperty("credential").GetString()!,
            created.GetProperty("studioUrl").GetString()!);
    }

    [Fact]
    public async Task Studio_GeneratesAnImage_ShowsItsProgress_AndKeepsItInTheGallery_WithTheCredentialInNoUrlAndNoLog()
    {
        var logs = new LogCapture();
        await using var host = await TestHost.StartAsync(logs: logs);
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, "builtin");
        var (id, credential, url) = await SessionAsync(host, world, DateTimeOffset.UtcNow.AddHours(1));
        Assert.Contains($"/studio/{id}#credential=", url, StringComparison.Ordinal);

        await using var tab = await browser.NewPageAsync(host.BaseAddress);
        await tab.Page.GotoAsync(url);
        await tab.Page.Locator("body[data-ready=true]").WaitForAsync();
        // The credential left the address bar as soon as the page read it.
        Assert.DoesNotContain(credential, tab.Page.Url, StringComparison.Ordinal);
        Assert.Matches(@"^(\d+:)?\d+:\d\d left$", await tab.Page.Locator("#clock").TextContentAsync() ?? "");
        Assert.True(await tab.Page.Locator("#model option").CountAsync() >= 1);
        Assert.True(await tab.Page.Locator("#sampler option").CountAsync() >= 1);

        await tab.Page.FillAsync("#prompt", "a red lighthouse on a cliff");
        await tab.Page.FillAsync("#steps", "6");
        await tab.Page.FillAsync("#width", "128");
        await tab.Page.FillAsync("#height", "128");
        await tab.Page.FillAsync("#seed", "4242");
        await tab.ScreenshotAsync("ready");
        await tab.Page.ClickAsync("#generate");
        await tab.Page.Locator("#progress:not([hidden])").WaitForAsync();
        await tab.Page.Locator("#canvas img.result, #error:not([hidden])").First.WaitForAsync(new LocatorWaitForOptions { Timeout = 120_000 });
        Assert.True(await tab.Page.Locator("#error").IsHiddenAsync(), await tab.Page.Locator("#error").TextContentAsync());
        Assert.Equal("Done", await tab.Page.Locator("#progress-text").TextContentAsync());
        Assert.Equal("1", await tab.Page.Locator("#progress").GetAttributeAsync("data-fraction"));
        Assert.Equal("4242", await tab.Page.Locator("#canvas img.result").GetAttributeAsync("data-seed"));
        // The image really loaded (a decoded picture of the requested size).
        var size = await tab.Page.Locator("#canvas img.result").EvaluateAsync<int[]>("img => [img.naturalWidth, img.naturalHeight]");
        Assert.Equal([128, 128], size);
        await tab.Page.Locator("#gallery figure img").WaitForAsync();
        Assert.Contains("seed 4242", await tab.Page.Locator("#gallery figcaption").First.TextContentAsync() ?? "", StringComparison.Ordinal);
        await tab.Page.WaitForFunctionAsync("() => [...document.querySelectorAll('#gallery img')].every(i => i.complete && i.naturalWidth > 0)");
        await tab.ScreenshotAsync("generated");

        // The server has the job, made by this session; the browser asked for nothing with the credential in it.
        var jobs = (await world.AdminOf(host).GetAsync("/api/v1/agents/default/jobs")).Ok();
        Assert.Equal(1, jobs.GetProperty("total").GetInt32());
        tab.AssertNotInAnyUrl(credential);
        Assert.Contains(tab.RequestUrls, u => u.Contains("/api/v1/predict/txt2img", StringComparison.Ordinal));
        Assert.NotEmpty(logs.Lines);
        Assert.All(logs.Lines, line => Assert.DoesNotContain(credential, line, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Studio_ShowsTheStepAndTheLivePreview_WhileTheJobRuns()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var engine = new GatedEngine();
        await using var worker = await InProcessWorker.StartAsync(host, adapter: engine);
        var (_, credential, url) = await SessionAsync(host, world, DateTimeOffset.UtcNow.AddHours(1));

        await using var tab = await browser.NewPageAsync(host.BaseAddress);
        await tab.Page.GotoAsync(url);
        await tab.Page.Locator("body[data-ready=true]").WaitForAsync();
        await tab.Page.FillAsync("#prompt", "a slow sunrise");
        await tab.Page.FillAsync("#steps", "10");
        await tab.Page.FillAsync("#width", "128");
        await tab.Page.FillAsync("#height", "128");
        await tab.Page.ClickAsync("#generate");

        // Held at step 3 of 10 by the engine: the page shows that step and the preview the worker sent.
        await tab.Page.Locator($"#canvas img.preview[data-step='{GatedEngine.HeldAt}']").WaitForAsync();
        Assert.Equal($"Step {GatedEngine.HeldAt} of 10", await tab.Page.Locator("#progress-text").TextContentAsync());
        Assert.Equal(16, await tab.Page.Locator("#canvas img.preview").EvaluateAsync<int>("img => img.naturalWidth"));
        Assert.True(await tab.Page.Locator("#cancel").IsVisibleAsync());
        await tab.ScreenshotAsync("preview");

        engine.Release();
        await tab.Page.Locator("#canvas img.result").WaitForAsync();
        Assert.Equal(0, await tab.Page.Locator("#canvas img.preview").CountAsync());
        tab.AssertNotInAnyUrl(credential);
    }

    [Fact]
    public async Task ExpiredSession_ShowsTheExpiredPage_AndAnIncompleteLinkSaysSo()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var (_, credential, url) = await SessionAsync(host, world, DateTimeOffset.UtcNow.AddSeconds(2));
        await Eventually.UntilAsync(async () => (await host.Client.With(credential).GetAsync("/api/v1/session")).Status == HttpStatusCode.Unauthorized,
            "the session has expired");
        (await host.Client.With(credential).GetAsync("/api/v1/session")).Error(ErrorCatalog.b_session_sessionexpired);

        await using var tab = await browser.NewPageAsync(host.BaseAddress);
        await tab.Page.GotoAsync(url);
        await tab.Page.Locator("#closed:not([hidden])").WaitForAsync();
        Assert.Equal("This session has expired", await tab.Page.Locator("#closed-title").TextContentAsync());
        Assert.True(await tab.Page.Locator("#studio").IsHiddenAsync());
        await tab.ScreenshotAsync("expired");
        tab.AssertNotInAnyUrl(credential);

        // The same page without the fragment: a link cut short.
        await using var bare = await browser.NewPageAsync(host.BaseAddress);
        await bare.Page.GotoAsync(url[..url.IndexOf('#', StringComparison.Ordinal)]);
        await bare.Page.Locator("#closed:not([hidden])").WaitForAsync();
        Assert.Equal("This link is not valid", await bare.Page.Locator("#closed-title").TextContentAsync());
    }
}
