using System.Diagnostics;
using System.Text.Json;

namespace Atelier.Engine.Tests;

/// <summary>
/// The build switch, read by MSBuild itself (evaluation only: nothing is restored or downloaded): <c>-p:AtelierGpu=cuda</c>
/// puts ONNX Runtime's CUDA package where the CPU one is, with the version that Directory.Packages.props pins, and any
/// other value stops the build with a message. The GPU build itself needs the 245 MB package and is made by
/// <c>bench/gpu/prepare.sh</c>.
/// </summary>
public sealed class GpuBuildSwitchTests
{
    private static readonly string Root = FindRoot();
    private static readonly string Engine = Path.Combine(Root, "src", "Atelier.Engine", "Atelier.Engine.csproj");

    [Fact]
    public async Task DefaultBuild_TakesTheCpuPackage()
    {
        var packages = await PackageReferencesAsync();
        Assert.Contains(("Microsoft.ML.OnnxRuntime", "1.31.1"), packages);
        Assert.DoesNotContain(packages, p => p.Name.Contains("Gpu", StringComparison.Ordinal));
    }

    [Fact]
    public async Task CudaSwitch_TakesTheCudaPackageInstead()
    {
        var packages = await PackageReferencesAsync("-p:AtelierGpu=cuda");
        Assert.Contains(("Microsoft.ML.OnnxRuntime.Gpu.Linux", "1.31.0"), packages);
        Assert.DoesNotContain(packages, p => p.Name == "Microsoft.ML.OnnxRuntime");
    }

    [Fact]
    public async Task AnotherValue_StopsTheBuildAndSaysWhatItTakes()
    {
        var (code, output) = await MsBuildAsync(Engine, "-t:AtelierGpuValue", "-p:AtelierGpu=rocm", "-nologo");
        Assert.NotEqual(0, code);
        Assert.Contains("AtelierGpu must be cuda (the GPU build) or left out (the CPU build), not 'rocm'", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeviceCheck_WithoutAGpu_RefusesClearly()
    {
        // The test machines have no NVIDIA GPU (and nothing staged): the check must say so and stop, not half-run.
        var output = Directory.CreateTempSubdirectory("atelier-gpu-check-").FullName;
        try
        {
            var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
            start.ArgumentList.Add(Path.Combine(Root, "bench", "gpu", "run.sh"));
            start.Environment["OUT"] = output;
            using var process = Process.Start(start)!;
            var text = await process.StandardError.ReadToEndAsync() + await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
            Assert.Equal(2, process.ExitCode);
            Assert.True(text.Contains("no NVIDIA GPU here", StringComparison.Ordinal) || text.Contains("nothing staged", StringComparison.Ordinal), text);
            Assert.Empty(Directory.EnumerateFiles(output));
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    private static async Task<List<(string Name, string Version)>> PackageReferencesAsync(params string[] properties)
    {
        // Central package management: the references name packages, Directory.Packages.props' PackageVersion items pin them.
        var (code, output) = await MsBuildAsync(Engine, ["-getItem:PackageReference", "-getItem:PackageVersion", .. properties]);
        Assert.True(code == 0, output);
        using var json = JsonDocument.Parse(output);
        var items = json.RootElement.GetProperty("Items");
        var pinned = items.GetProperty("PackageVersion").EnumerateArray()
            .ToDictionary(i => i.GetProperty("Identity").GetString()!, i => i.GetProperty("Version").GetString()!);
        return [.. items.GetProperty("PackageReference").EnumerateArray()
            .Select(i => i.GetProperty("Identity").GetString()!)
            .Select(name => (name, pinned.GetValueOrDefault(name, "")))];
    }

    private static async Task<(int Code, string Output)> MsBuildAsync(string project, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
        foreach (var a in (string[])["msbuild", project, .. args])
        {
            start.ArgumentList.Add(a);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5)); // a deadline for a loaded machine, not a measure
        return (process.ExitCode, await stdout + await stderr);
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Atelier.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("the repository root (Atelier.slnx) is not above the test's folder");
    }
}
