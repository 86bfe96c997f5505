using System.Globalization;
using Atelier.Runtime.Local;

namespace Atelier.Runtime.Tests.Local;

/// <summary>The test instance program (tests/Atelier.Runtime.TestInstance), built beside these tests, as a revision to run.</summary>
internal static class TestInstance
{
    private static readonly Lazy<string> Dll = new(Locate);

    /// <summary>The test instance's dll, from the same configuration as the tests.</summary>
    public static string DllPath => Dll.Value;

    /// <summary>The dotnet host running these tests (dotnet test names it), else dotnet on PATH.</summary>
    public static string Dotnet =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary>
    /// A revision running the test instance. <paramref name="marker"/> goes on its command line so a test can find
    /// every process it started (and check none is left) by scanning /proc.
    /// </summary>
    public static RevisionSpec Revision(string marker, string name = "latest", IReadOnlyDictionary<string, string>? environment = null, int port = 0, int concurrency = 1) => new()
    {
        Name = name,
        Command = Dotnet,
        Args = [DllPath, MarkerArgument(marker)],
        Environment = environment ?? new Dictionary<string, string>(),
        Port = port,
        HealthPath = "/health",
        InstanceConcurrency = concurrency,
    };

    public static string MarkerArgument(string marker) => $"--atelier-test-marker={marker}";

    /// <summary>Live processes (zombies are dead) whose command line carries <paramref name="marker"/>.</summary>
    public static List<int> ProcessesWithMarker(string marker)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && ProcessGroups.ReadCommandLine(pid) is { } commandLine
                && commandLine.Contains(MarkerArgument(marker), StringComparison.Ordinal)
                && IsAlive(pid))
            {
                found.Add(pid);
            }
        }

        return found;
    }

    public static bool IsAlive(int pid) => ProcessGroups.ReadStat(pid) is { IsAlive: true };

    private static string Locate()
    {
        // bin/{Configuration}/net10.0 of the tests: the configuration is the folder above the target framework's.
        var output = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
        var configuration = output.Parent!.Name;
        var root = output;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Atelier.slnx")))
        {
            root = root.Parent;
        }

        if (root is null)
        {
            throw new InvalidOperationException($"No Atelier.slnx above {AppContext.BaseDirectory}.");
        }

        var dll = Path.Combine(root.FullName, "tests", "Atelier.Runtime.TestInstance", "bin", configuration, "net10.0", "Atelier.Runtime.TestInstance.dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"The test instance is not built: {dll} is missing.");
    }
}
