using System.Text.Json;
using System.Text.RegularExpressions;
using Atelier.Engine.Images;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Atelier.Server.Tests.Cli;

/// <summary>One server with a tenant and an in-process worker on the built-in engine, for the CLI tests.</summary>
public sealed class CliHost : IAsyncLifetime
{
    public TestHost Host { get; private set; } = null!;
    public TenantWorld World { get; private set; } = null!;
    public FileServer Files { get; private set; } = null!;
    private InProcessWorker _worker = null!;

    public async ValueTask InitializeAsync()
    {
        Files = await FileServer.StartAsync();
        // The file server is on loopback: model downloads from it are allowed here.
        Host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Models:AllowPrivateNetworks"] = "true" });
        World = await Scenario.NewTenantAsync(Host);
        _worker = await InProcessWorker.StartAsync(Host, "builtin", id: "cli-worker");
    }

    public async ValueTask DisposeAsync()
    {
        await _worker.DisposeAsync();
        await Host.DisposeAsync();
        await Files.DisposeAsync();
    }
}

/// <summary>
/// The client verbs of <c>atelier</c> (issue 16, item 5), run as the real program in a child process against a test
/// server, each test with a config file of its own (<c>ATELIER_CONFIG</c>) and none of the caller's variables.
/// </summary>
public sealed partial class CliTests(CliHost shared) : IClassFixture<CliHost>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("atelier-cli-").FullName;

    private TestHost Host => shared.Host;
    private TenantWorld World => shared.World;
    private string Server => Host.BaseAddress.ToString().TrimEnd('/');
    private string ConfigPath => Path.Combine(_folder, "config", "atelier", "config.json");

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private Task<(int ExitCode, string Out, string Error)> RunAsync(string[] args, string? input = null) =>
        AtelierProcess.RunAsync(_folder, args, new Dictionary<string, string?>
        {
            ["ATELIER_CONFIG"] = ConfigPath,
            ["ATELIER_SERVER"] = null,
            ["ATELIER_TOKEN"] = null,
            ["ATELIER_TENANT"] = null,
            ["ATELIER_OPERATOR"] = null,
        }, input);

    /// <summary>A verb with this server and a credential on the command line.</summary>
    private Task<(int ExitCode, string Out, string Error)> AsAsync(string token, params string[] args) => RunAsync([.. args, "--server", Server, "--token", token]);

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement;

    [Fact]
    public async Task Login_TokenOnStdin_WritesTheConfigOwnerOnly_NeverPrintsTheToken_AndVerbsUseIt()
    {
        var (code, stdout, stderr) = await RunAsync(["login", "--server", Server, "--token-stdin"], World.AdminToken + "\n");

        Assert.True(code == 0, stderr);
        Assert.True(File.Exists(ConfigPath));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ConfigPath));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(ConfigPath)!));
        }

        Assert.DoesNotContain(World.AdminToken, stdout + stderr, StringComparison.Ordinal);
        var saved = Json(await File.ReadAllTextAsync(ConfigPath));
        Assert.Equal(Server, saved.GetProperty("server").GetString());
        Assert.Equal(World.AdminToken, saved.GetProperty("token").GetString());

        // No --server, no --token, no variables: the saved login.
        var list = await RunAsync(["apps", "list", "--json"]);
        Assert.True(list.ExitCode == 0, list.Error);
        Assert.Contains(Json(list.Out).GetProperty("items").EnumerateArray(), a => a.GetProperty("id").GetString() == World.AppId);

        var logout = await RunAsync(["logout"]);
        Assert.Equal(0, logout.ExitCode);
        Assert.False(File.Exists(ConfigPath));
        Assert.Equal(67, (await RunAsync(["apps", "list"])).ExitCode);
    }

    [Fact]
    public async Task Login_WrongToken_ExitsUnauthorized_AndSavesNothing()
    {
        var wrong = World.AdminToken[..^6] + "AAAAAA";

        var (code, stdout, stderr) = await RunAsync(["login", "--server", Server, "--token", wrong]);

        Assert.Equal(77, code);
        Assert.False(File.Exists(ConfigPath));
        Assert.Contains("p_token_invalidapitoken", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnyVerb_WrongToken_ExitsUnauthorized()
    {
        var (code, _, stderr) = await AsAsync("atk_not_a_real_token", "apps", "list");

        Assert.Equal(77, code);
        Assert.Contains("HTTP 401", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownVerb_ExitsUsage()
    {
        var (code, _, stderr) = await RunAsync(["frobnicate", "--server", Server]);

        Assert.Equal(64, code);
        Assert.Contains("frobnicate", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ServerNotListening_ExitsNetwork()
    {
        var (code, _, stderr) = await RunAsync(["apps", "list", "--server", $"http://127.0.0.1:{AtelierProcess.FreePort()}", "--token", World.AdminToken]);

        Assert.Equal(68, code);
        Assert.Contains("Cannot reach", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Apps_CreateThenList_JsonIsTheApisData()
    {
        var created = await AsAsync(World.AdminToken, "apps", "create", "cli-made", "--description", "from the CLI", "--json");
        Assert.True(created.ExitCode == 0, created.Error);
        var id = Json(created.Out).GetProperty("id").GetString()!;

        var list = await AsAsync(World.AdminToken, "apps", "list", "--json");
        Assert.True(list.ExitCode == 0, list.Error);
        var app = Assert.Single(Json(list.Out).GetProperty("items").EnumerateArray(), a => a.GetProperty("id").GetString() == id);
        Assert.Equal("cli-made", app.GetProperty("name").GetString());

        // The table names it too; a deleted app is gone from the API.
        Assert.Contains(id, (await AsAsync(World.AdminToken, "apps", "list")).Out, StringComparison.Ordinal);
        Assert.Equal(0, (await AsAsync(World.AdminToken, "apps", "delete", id)).ExitCode);
        (await World.AdminOf(Host).GetAsync($"/api/v1/apps/{id}")).Error(Contracts.Errors.ErrorCatalog.b_user_appnotfound, 404);
        Assert.Equal(66, (await AsAsync(World.AdminToken, "apps", "delete", id)).ExitCode);
    }

    [Fact]
    public async Task Tenants_CreateWithThePlatformKey_IsInitialisedActiveAndListed()
    {
        var uid = $"acct-cli-{Guid.NewGuid():N}"[..20];

        var created = await AsAsync(Host.AdminKey, "tenants", "create", "cli tenant", "--account", uid, "--json");

        Assert.True(created.ExitCode == 0, created.Error);
        var tenant = Json(created.Out);
        var id = tenant.GetProperty("id").GetString()!;
        Assert.Equal(uid, tenant.GetProperty("accountUid").GetString());
        Assert.Equal("active", tenant.GetProperty("state").GetString());
        Assert.Equal("active", (await Host.Admin().GetAsync($"/api/v1/tenants/{id}")).Ok().GetProperty("state").GetString());
        var list = await AsAsync(Host.AdminKey, "tenants", "list", "--json");
        Assert.Contains(Json(list.Out).GetProperty("items").EnumerateArray(), t => t.GetProperty("id").GetString() == id);
        // A tenant admin token is not the platform admin.
        Assert.Equal(77, (await AsAsync(World.AdminToken, "tenants", "list")).ExitCode);
    }

    [Fact]
    public async Task Tokens_Issue_ShowsTheSecretOnce_ListNever_AndRevokeEndsIt()
    {
        var (code, stdout, stderr) = await AsAsync(World.AdminToken, "tokens", "issue", "--app", World.AppId, "--name", "cli-issued", "--scope", "app");

        Assert.True(code == 0, stderr);
        var secret = Assert.Single(TokenSecret().Matches(stdout)).Value;
        (await Host.Client.With(secret).GetAsync("/api/v1/me")).Ok();

        var list = await AsAsync(World.AdminToken, "tokens", "list", "--app", World.AppId);
        Assert.True(list.ExitCode == 0, list.Error);
        Assert.Contains("cli-issued", list.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, list.Out + list.Error, StringComparison.Ordinal);

        var issued = Json((await AsAsync(World.AdminToken, "tokens", "list", "--app", World.AppId, "--json")).Out).GetProperty("items").EnumerateArray()
            .Single(t => t.GetProperty("name").GetString() == "cli-issued");
        Assert.Equal(0, (await AsAsync(World.AdminToken, "tokens", "revoke", issued.GetProperty("id").GetString()!)).ExitCode);
        Assert.Equal(77, (await AsAsync(secret, "jobs", "list")).ExitCode);
    }

    [Fact]
    public async Task ModelsUpload_SmallLora_EndsWithTheVersionListed_AndRunningAgainAddsNothing()
    {
        var bytes = ModelFiles.Lora(salt: Guid.NewGuid().ToString("N"));
        var file = Path.Combine(_folder, "tiny-lora.safetensors");
        await File.WriteAllBytesAsync(file, bytes);
        var sha = ModelFiles.Sha256(bytes);

        var (code, _, stderr) = await AsAsync(World.AdminToken, "models", "upload", file, "--type", "lora", "--model", "cli-lora");

        Assert.True(code == 0, stderr);
        var admin = World.AdminOf(Host);
        var model = (await admin.GetAsync("/api/v1/models?name=cli-lora")).Ok().GetProperty("items").EnumerateArray().Single(m => m.GetProperty("name").GetString() == "cli-lora");
        var versions = (await admin.GetAsync($"/api/v1/models/{model.GetProperty("id").GetString()}/versions")).Ok();
        var stored = Assert.Single(Assert.Single(versions.EnumerateArray()).GetProperty("files").EnumerateArray());
        Assert.Equal(sha, stored.GetProperty("sha256").GetString());
        Assert.Equal("stored", stored.GetProperty("state").GetString());
        Assert.Equal("upload", stored.GetProperty("source").GetString());

        // Again (as after an interruption): reported, not added twice.
        var again = await AsAsync(World.AdminToken, "models", "upload", file, "--type", "lora", "--model", "cli-lora");
        Assert.True(again.ExitCode == 0, again.Error);
        Assert.Single((await admin.GetAsync($"/api/v1/models/{model.GetProperty("id").GetString()}/versions")).Ok().EnumerateArray());

        // The same bytes into another model: the server has them, so they are added by their hash.
        var other = await AsAsync(World.AdminToken, "models", "upload", file, "--type", "lora", "--model", "cli-lora-2", "--json");
        Assert.True(other.ExitCode == 0, other.Error);
        var byHash = Json(other.Out).GetProperty("files")[0];
        Assert.Equal("hash", byHash.GetProperty("source").GetString());
        Assert.Equal(sha, byHash.GetProperty("sha256").GetString());
    }

    [Fact]
    public async Task ModelsDownload_FromAUrl_FollowsTheDownloadUntilStored()
    {
        var bytes = ModelFiles.Lora(salt: Guid.NewGuid().ToString("N"));
        var url = shared.Files.Add($"cli-{Guid.NewGuid():N}.safetensors", bytes);

        var (code, stdout, stderr) = await AsAsync(World.AdminToken, "models", "download", url, "--type", "lora", "--model", "cli-downloaded", "--json");

        Assert.True(code == 0, stderr);
        var file = Json(stdout).GetProperty("files")[0];
        Assert.Equal("stored", file.GetProperty("state").GetString());
        Assert.Equal(ModelFiles.Sha256(bytes), file.GetProperty("sha256").GetString());
        var version = (await World.AdminOf(Host).GetAsync($"/api/v1/model-versions/{Json(stdout).GetProperty("id").GetString()}")).Ok();
        Assert.Equal("synced", version.GetProperty("syncState").GetString());
    }

    [Fact]
    public async Task ModelsUpload_MissingFile_ExitsNotFound()
    {
        var (code, _, stderr) = await AsAsync(World.AdminToken, "models", "upload", Path.Combine(_folder, "none.safetensors"), "--type", "lora", "--model", "x");

        Assert.Equal(66, code);
        Assert.Contains("none.safetensors", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Generate_WritesThePng_AndTheJobIsListed()
    {
        var output = Path.Combine(_folder, "out", "fox.png");

        var (code, stdout, stderr) = await AsAsync(World.AppToken, "generate", "a small fox", "-o", output, "--steps", "2", "--width", "64", "--height", "64", "--seed", "7", "--json");

        Assert.True(code == 0, stderr);
        var (_, width, height) = PngDecoder.Decode(await File.ReadAllBytesAsync(output));
        Assert.Equal((64, 64), (width, height));
        var result = Json(stdout);
        Assert.Equal("succeeded", result.GetProperty("state").GetString());
        Assert.Equal(7, result.GetProperty("images")[0].GetProperty("seed").GetInt64());
        var taskId = result.GetProperty("id").GetString()!;

        var shown = await AsAsync(World.AppToken, "jobs", "show", taskId, "--json");
        Assert.True(shown.ExitCode == 0, shown.Error);
        Assert.Equal("succeeded", Json(shown.Out).GetProperty("state").GetString());
        var images = await AsAsync(World.AppToken, "images", "list", "--job", taskId, "--json");
        Assert.Single(Json(images.Out).GetProperty("items").EnumerateArray());
    }

    [Fact]
    public async Task Generate_RefusedInput_ExitsFailed_AndWritesNothing()
    {
        var output = Path.Combine(_folder, "bad.png");

        var (code, _, stderr) = await AsAsync(World.AppToken, "generate", "a fox", "-o", output, "--width", "65");

        Assert.Equal(1, code);
        Assert.Contains("p_common_inputinvalid", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task Usage_PrintsOneRowPerPointAndOneColumnPerSeries_AndSaysSoWhenTheServerHasNoUsageApi()
    {
        // The usage API's answer as docs/api.md gives it, from a stand-in server (the CLI's side of the contract).
        string? query = null;
        await using var usage = await StandInAsync(http =>
        {
            query = http.Request.QueryString.Value;
            return Results.Json(new
            {
                requestId = "req_x", success = true,
                data = new
                {
                    indicator = "jobs", unit = "count", step = "hour", from = "2026-11-28T00:00:00Z", to = "2026-11-28T02:00:00Z",
                    series = new object[]
                    {
                        new { key = "succeeded", points = new[] { new { at = "2026-11-28T00:00:00Z", value = 12 }, new { at = "2026-11-28T01:00:00Z", value = 7 } } },
                        new { key = "failed", points = new[] { new { at = "2026-11-28T01:00:00Z", value = 3 } } },
                    },
                },
            });
        });
        await using var older = await StandInAsync(_ => Results.Json(
            new { requestId = "req_y", success = false, subErrCode = "p_common_inputinvalid", subErrMessage = "no route", errCode = "no_route", errMessage = "no route" }, statusCode: 404));

        var (code, stdout, stderr) = await RunAsync(["usage", "--from", "2026-11-28T00:00:00Z", "--to", "2026-11-28T02:00:00Z", "--server", usage.Address, "--token", World.AdminToken]);

        Assert.True(code == 0, stderr);
        Assert.Equal("?indicator=jobs&from=2026-11-28T00%3A00%3A00Z&to=2026-11-28T02%3A00%3A00Z&step=hour&by=state", query);
        var rows = stdout.Split('\n');
        Assert.Contains(rows, r => r.Contains("succeeded", StringComparison.Ordinal) && r.Contains("failed", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.Contains("2026-11-28T00:00:00Z", StringComparison.Ordinal) && Regex.IsMatch(r, @"\b12\b.*\b0\b"));
        Assert.Contains(rows, r => r.Contains("2026-11-28T01:00:00Z", StringComparison.Ordinal) && Regex.IsMatch(r, @"\b7\b.*\b3\b"));

        var missing = await RunAsync(["usage", "--server", older.Address, "--token", World.AdminToken]);
        Assert.Equal(66, missing.ExitCode);
        Assert.Contains("has no usage API", missing.Error, StringComparison.Ordinal);
    }

    /// <summary>A server on loopback that answers <c>GET /api/v1/usage/query</c> with <paramref name="answer"/>; disposing it stops it.</summary>
    private static async Task<StandIn> StandInAsync(Func<HttpContext, IResult> answer)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        var app = builder.Build();
        app.MapGet("/api/v1/usage/query", answer);
        await app.StartAsync();
        return new StandIn(app);
    }

    private sealed class StandIn(WebApplication app) : IAsyncDisposable
    {
        public string Address => app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    [GeneratedRegex(@"atk_[A-Za-z0-9]{46}")]
    private static partial Regex TokenSecret();
}
