using Atelier.Server;
using Atelier.Worker.A1111;

// atelier serve [--Atelier:Server:Urls=...]        the platform server (the default verb)
// atelier engine [--Atelier:Engine:Urls=...]       the built-in engine alone, speaking the AUTOMATIC1111 API
// atelier worker --server URL --token T [--engine builtin|a1111=URL|comfyui=URL|noop[=ms]] [--slots N] [--id ID] [--models DIR] [--parent-pid PID]
// atelier models demo [folder]                     writes the tiny demo model (no download)
var verb = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "serve";
var rest = args.Length > 0 && !args[0].StartsWith('-') ? args[1..] : args;

switch (verb)
{
    case "serve":
        // appsettings.json and defaults/ ship beside the executable; ./data stays where the server is started.
        return AtelierServer.Run(["--contentRoot", AppContext.BaseDirectory, .. rest]);
    case "worker":
        return await WorkerCommand.RunAsync(rest);
    case "engine":
        EngineServer.Build(rest).Run();
        return ExitCodes.Ok;
    case "models" when rest.Length > 0 && rest[0] == "demo":
        var folder = rest.Length > 1 ? rest[1] : Path.Combine("data", "models");
        Console.WriteLine($"Demo model in {Atelier.Engine.Onnx.DemoModel.Ensure(folder)}");
        return ExitCodes.Ok;
    case "version" or "--version":
        Console.WriteLine(typeof(AtelierServer).Assembly.GetName().Version);
        return ExitCodes.Ok;
    default:
        Console.Error.WriteLine($"Unknown verb '{verb}'. Verbs: serve, worker, engine, models demo, version.");
        return ExitCodes.Usage;
}

/// <summary>The process exit codes of the CLI.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The command line was wrong (sysexits EX_USAGE).</summary>
    public const int Usage = 64;
    /// <summary>A worker whose parent process (the server that started it) is gone (sysexits EX_UNAVAILABLE).</summary>
    public const int ParentGone = 69;
    /// <summary>A worker whose key the server refused: revoked, replaced or unknown (sysexits EX_NOPERM).</summary>
    public const int KeyRefused = 77;
}

/// <summary>Visible to the test host (WebApplicationFactory finds the app through this entry point).</summary>
public partial class Program;
