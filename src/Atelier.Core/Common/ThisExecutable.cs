namespace Atelier.Core.Common;

/// <summary>How to start this installation's <c>atelier</c> again as a child process (a worker, an engine instance).</summary>
public static class ThisExecutable
{
    /// <summary>
    /// The program and the arguments that come before the verb: <c>atelier</c> itself, or <c>dotnet atelier.dll</c>
    /// (also when another host, a test runner, loaded the server). <paramref name="configured"/> overrides it (a path
    /// to <c>atelier</c>, or to <c>atelier.dll</c>).
    /// </summary>
    public static (string File, string[] Prefix) Command(string? configured = null)
    {
        if (configured is { Length: > 0 })
        {
            return configured.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? ("dotnet", [configured]) : (configured, []);
        }

        var process = Environment.ProcessPath ?? "dotnet";
        var name = Path.GetFileNameWithoutExtension(process);
        if (name == "atelier")
        {
            return (process, []);
        }

        var dll = Path.Combine(AppContext.BaseDirectory, "atelier.dll");
        var dotnet = name == "dotnet" ? process : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        return (dotnet, [File.Exists(dll) ? dll : System.Reflection.Assembly.GetEntryAssembly()?.Location ?? dll]);
    }
}
