using System.Collections.Concurrent;
using Microsoft.Playwright;

namespace Atelier.Browser.Tests;

/// <summary>
/// One headless Chromium for the whole collection (Debian's, at <see cref="ExecutablePath"/>; Playwright never downloads
/// one). Playwright launches it on a fresh user data folder of its own (a new temp folder, removed when it closes).
/// Each test opens its own context, with nothing shared, through <see cref="NewPageAsync"/>.
/// </summary>
public sealed class Browser : IAsyncLifetime
{
    public const string ExecutablePath = "/usr/bin/chromium";

    private static readonly string[] Args =
    [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
    ];

    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public async ValueTask InitializeAsync()
    {
        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException($"{ExecutablePath} is missing: install Debian's chromium package (scripts/test.sh does, as root)");
        }

        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath, Headless = true, Args = Args,
        });
    }

    /// <summary>A new context and page, recording every request URL it makes.</summary>
    public async Task<BrowserPage> NewPageAsync(Uri baseAddress)
    {
        var context = await _browser!.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = baseAddress.ToString(), ViewportSize = new ViewportSize { Width = 1360, Height = 900 },
        });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        return new BrowserPage(context, page);
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.CloseAsync();
        }

        _playwright?.Dispose();
    }
}

/// <summary>A test's own browser context and page, the URLs of every request it made, and its screenshots.</summary>
public sealed class BrowserPage : IAsyncDisposable
{
    private readonly ConcurrentQueue<string> _urls = new();
    private readonly ConcurrentQueue<string> _console = new();
    private int _shots;

    internal BrowserPage(IBrowserContext context, IPage page)
    {
        Context = context;
        Page = page;
        page.Request += (_, request) => _urls.Enqueue(request.Url);
        page.Console += (_, message) => _console.Enqueue($"{message.Type}: {message.Text}");
        page.PageError += (_, error) => _console.Enqueue($"pageerror: {error}");
        // A confirm() ("Delete 2 images?") is answered yes, as the person at the console would.
        page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
    }

    public IBrowserContext Context { get; }
    public IPage Page { get; }

    /// <summary>Every URL the page requested so far (documents, scripts, API calls, images …).</summary>
    public IReadOnlyList<string> RequestUrls => [.. _urls];

    /// <summary>What the page wrote to its console, and its uncaught errors (for a failing test's message).</summary>
    public IReadOnlyList<string> ConsoleLines => [.. _console];

    /// <summary>
    /// Saves a full-page screenshot to <c>$ATELIER_TEST_SCREENSHOTS</c> (default: <c>bin/screenshots</c> of this project),
    /// named after the running test and <paramref name="step"/>. Returns the file's path.
    /// </summary>
    public async Task<string> ScreenshotAsync(string step = "")
    {
        var folder = Environment.GetEnvironmentVariable("ATELIER_TEST_SCREENSHOTS") is { Length: > 0 } configured
            ? configured
            : Path.Combine(ProjectBin(), "screenshots");
        Directory.CreateDirectory(folder);
        var test = TestContext.Current.Test?.TestDisplayName ?? "test";
        var name = string.Concat($"{test}-{Interlocked.Increment(ref _shots):00}{(step.Length > 0 ? "-" + step : "")}"
            .Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
        var path = Path.Combine(folder, name + ".png");
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }

    /// <summary>Asserts that <paramref name="secret"/> is in none of the URLs the page requested.</summary>
    public void AssertNotInAnyUrl(string secret)
    {
        Assert.NotEmpty(RequestUrls);
        Assert.All(RequestUrls, url => Assert.DoesNotContain(secret, Uri.UnescapeDataString(url), StringComparison.Ordinal));
    }

    private static string ProjectBin()
    {
        // AppContext.BaseDirectory is bin/<Configuration>/<tfm>/; the screenshots go next to those, in bin/screenshots.
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && dir.Name != "bin")
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? AppContext.BaseDirectory;
    }

    public async ValueTask DisposeAsync() => await Context.CloseAsync();
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<Browser>
{
    public const string Name = "browser";
}
