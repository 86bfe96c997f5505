using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Browser.Tests;

[Collection(BrowserCollection.Name)]
public sealed class SmokeTests(Browser browser)
{
    [Fact]
    public async Task Console_Loads_ShowsSignIn()
    {
        await using var host = await TestHost.StartAsync();
        await using var tab = await browser.NewPageAsync(host.BaseAddress);
        var response = await tab.Page.GotoAsync("/console");
        Assert.NotNull(response);
        Assert.Equal(200, response.Status);
        await tab.Page.Locator("#signin-token").WaitForAsync();
        Assert.Equal("Atelier console", await tab.Page.TitleAsync());
        await tab.ScreenshotAsync("signin");
    }
}
