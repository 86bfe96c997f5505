using System.Text.RegularExpressions;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Processes;

/// <summary>
/// The command line of the real executable: help and version start nothing, a wrong command line is refused with exit
/// code 64 (EX_USAGE) and a message on standard error, and the server keeps its state where it is told.
/// </summary>
public partial class CliTests : IDisposable
{
    private const int Usage = 64;
    private readonly string _folder = Directory.CreateTempSubdirectory("atelier-cli-").FullName;

    // Neither may leak in from the machine running the tests: the worker reads them when its options are missing.
    private static readonly Dictionary<string, string?> NoWorkerEnvironment = new() { ["ATELIER_SERVER"] = null, ["ATELIER_WORKER_TOKEN"] = null };

    public void Dispose()
    {
        Directory.Delete(_folder, recursive: true);
        GC.SuppressFinalize(this);
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public async Task Help_AtTheRoot_ListsEveryVerbAndStartsNothing(string help)
    {
        var (code, output, error) = await AtelierProcess.RunAsync(_folder, [help]);

        Assert.Equal(0, code);
        Assert.Empty(error);
        foreach (var verb in new[] { "serve", "worker", "engine", "models", "version" })
        {
            Assert.Matches(new Regex($@"^\s+{verb}\s", RegexOptions.Multiline), output);
        }

        Assert.Empty(Directory.EnumerateFileSystemEntries(_folder));
    }

    [Theory]
    [InlineData("serve", "--urls", "--data", "configuration")]
    [InlineData("worker", "--server", "--token", "--engine", "--slots", "--id", "--models", "--model-cache", "--model-cache-bytes", "--a1111-models", "--parent-pid",
        "--device", "--device-fallback", "--memory-budget", "--cuda-memory-limit")]
    [InlineData("engine", "--urls", "--models", "--device", "--device-fallback", "configuration")]
    [InlineData("models", "demo")]
    [InlineData("models demo", "--name")]
    [InlineData("login", "--server", "--token", "--token-stdin", "--tenant", "--operator")]
    [InlineData("apps create", "--description", "--server", "--token", "--tenant", "--operator", "--json", "--quiet")]
    [InlineData("tokens issue", "--app", "--name", "--scope", "--expires")]
    [InlineData("models upload", "--type", "--model", "--version", "--alias")]
    [InlineData("generate", "--output", "--model", "--steps", "--seed", "--width", "--height", "--negative")]
    [InlineData("usage", "--indicator", "--from", "--to", "--step", "--by")]
    public async Task Help_OfAVerb_ListsItsOptionsAndStartsNothing(string verb, params string[] listed)
    {
        var (code, output, _) = await AtelierProcess.RunAsync(_folder, [.. verb.Split(' '), "--help"], NoWorkerEnvironment);

        Assert.Equal(0, code);
        Assert.Contains($"atelier {verb}", output, StringComparison.Ordinal);
        foreach (var option in listed)
        {
            Assert.Contains(option, output, StringComparison.Ordinal);
        }

        Assert.Empty(Directory.EnumerateFileSystemEntries(_folder));
    }

    [Fact]
    public async Task Version_OptionAndVerb_PrintTheSameVersion()
    {
        var (code, output, _) = await AtelierProcess.RunAsync(_folder, ["--version"]);
        var (verbCode, verbOutput, _) = await AtelierProcess.RunAsync(_folder, ["version"]);

        Assert.Equal(0, code);
        Assert.Matches(@"^\d+\.\d+\.\d+\S*\n$", output.ReplaceLineEndings("\n"));
        Assert.Equal(0, verbCode);
        Assert.Equal(output, verbOutput);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_folder));
    }

    [Theory]
    [InlineData("bogus", "bogus")]
    [InlineData("--bogus", "--bogus")]
    [InlineData("serve --bogus", "--bogus")]
    [InlineData("serve --urls http://127.0.0.1:0 stray", "stray")]
    [InlineData("serve --Atelier:Server:Urls", "needs a value")]
    [InlineData("engine --bogus=1", "--bogus=1")]
    [InlineData("worker --server http://127.0.0.1:9 --token atw_x --bogus", "--bogus")]
    [InlineData("worker --server http://127.0.0.1:9 --token atw_x --slots 0", "--slots")]
    [InlineData("worker --server http://127.0.0.1:9 --token atw_x --engine nope", "--engine")]
    [InlineData("worker --server http://127.0.0.1:9 --token atw_x --model-cache-bytes lots", "--model-cache-bytes")]
    [InlineData("models demo --name ../up", "--name")]
    [InlineData("worker --server http://127.0.0.1:9 --token atw_x --device gpu", "--device")]
    [InlineData("worker --server http://127.0.0.1:9 --token atw_x --memory-budget lots", "--memory-budget")]
    [InlineData("engine --device cuda:x", "--device")]
    [InlineData("worker --server http://127.0.0.1:9 --token atw_x --a1111-models /tmp/x", "--a1111-models")]
    [InlineData("worker --server not-a-url --token atw_x", "--server")]
    [InlineData("worker --token atw_x", "--server")]
    [InlineData("worker --server http://127.0.0.1:9", "--token")]
    [InlineData("models", "command")]
    public async Task WrongCommandLine_Any_ExitsWithUsageSaysWhyAndStartsNothing(string commandLine, string named)
    {
        var (code, output, error) = await AtelierProcess.RunAsync(_folder, commandLine.Split(' '), NoWorkerEnvironment);

        Assert.Equal(Usage, code);
        Assert.Empty(output);
        Assert.Contains(named, error, StringComparison.Ordinal);
        Assert.Contains("--help", error, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_folder));
    }

    /// <summary>The README's quick start: <c>atelier</c> without a verb serves, its state in ./data of the working directory.</summary>
    [Fact]
    public async Task Atelier_WithoutVerb_ServesWithItsStateInTheWorkingDirectorysData()
    {
        await using var server = AtelierProcess.Start(_folder, Quiet(new() { ["Atelier__Server__Urls"] = "http://127.0.0.1:0" }));

        await server.WaitForOutputAsync("Now listening on:", TimeSpan.FromSeconds(180)); // a deadline for a loaded machine, not a measure
        Assert.True(File.Exists(Path.Combine(_folder, "data", "atelier.db")), server.Output);
    }

    [Fact]
    public async Task Serve_UrlsAndDataOptions_SetWhereItListensAndKeepsItsState()
    {
        var port = AtelierProcess.FreePort();
        var data = Path.Combine(_folder, "elsewhere");
        await using var server = AtelierProcess.Start(_folder, Quiet([]), "serve", "--urls", $"http://127.0.0.1:{port}", "--data", data);

        await server.WaitForOutputAsync($"Now listening on: http://127.0.0.1:{port}", TimeSpan.FromSeconds(180));
        Assert.True(File.Exists(Path.Combine(data, "atelier.db")), server.Output);
        Assert.False(Directory.Exists(Path.Combine(_folder, "data")));
    }

    /// <summary>
    /// The tests run the CPU build: a worker or an engine told <c>--device cuda</c> stops at once with its own exit code and
    /// says how to build the GPU one, before it writes anything; with <c>--device-fallback</c> it runs on the CPU and says so.
    /// </summary>
    [Theory]
    [InlineData("worker --server http://127.0.0.1:9 --token atw_x --device cuda", "--device cuda:0 needs the GPU build")]
    [InlineData("worker --server http://127.0.0.1:9 --token atw_x --device cuda:2", "--device cuda:2 needs the GPU build")]
    [InlineData("engine --urls http://127.0.0.1:0 --device cuda", "--device cuda:0 needs the GPU build")]
    [InlineData("engine --urls http://127.0.0.1:0 --Atelier:Engine:Device=cuda:1", "--device cuda:1 needs the GPU build")]
    public async Task DeviceCuda_OnTheCpuBuild_StopsWithTheBuildCommand(string commandLine, string said)
    {
        var (code, _, error) = await AtelierProcess.RunAsync(_folder, commandLine.Split(' '), NoWorkerEnvironment);

        Assert.Equal(71, code);
        Assert.Contains(said, error, StringComparison.Ordinal);
        Assert.Contains("dotnet publish src/Atelier -c Release -p:AtelierGpu=cuda", error, StringComparison.Ordinal);
        Assert.Contains("--device-fallback", error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_folder, "data", "models")), "no demo model is written by a process that does not start");
    }

    [Fact]
    public async Task DeviceCuda_WithFallback_RunsOnTheCpuAndSaysWhy()
    {
        await using var engine = AtelierProcess.Start(_folder, NoWorkerEnvironment, "engine", "--urls", "http://127.0.0.1:0", "--device", "cuda", "--device-fallback");

        await engine.WaitForOutputAsync("The built-in engine runs on cpu (CPUExecutionProvider)", TimeSpan.FromSeconds(180));
        Assert.Contains("needs the GPU build", engine.Output, StringComparison.Ordinal);
        Assert.Contains("running on the CPU instead (--device-fallback)", engine.Output, StringComparison.Ordinal);
        await engine.WaitForOutputAsync("Now listening on:", TimeSpan.FromSeconds(180));
    }

    /// <summary>No demo tenant and no local worker: these tests are about where the server starts, not what it runs.</summary>
    private static Dictionary<string, string?> Quiet(Dictionary<string, string?> environment)
    {
        environment["Atelier__Embedded__DemoTenant"] = "false";
        environment["Atelier__Embedded__LocalWorker"] = "false";
        return environment;
    }
}
