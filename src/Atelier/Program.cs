using Atelier.Server;

// atelier serve [--Atelier:Server:Urls=...]   (serve is the default verb)
var verb = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : "serve";
var rest = args.Length > 0 && !args[0].StartsWith('-') ? args[1..] : args;

switch (verb)
{
    case "serve":
        AtelierServer.Build(rest).Run();
        return ExitCodes.Ok;
    case "version" or "--version":
        Console.WriteLine(typeof(AtelierServer).Assembly.GetName().Version);
        return ExitCodes.Ok;
    default:
        Console.Error.WriteLine($"Unknown verb '{verb}'. Verbs: serve, version.");
        return ExitCodes.Usage;
}

/// <summary>The process exit codes of the CLI.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Usage = 64;
}

/// <summary>Visible to the test host (WebApplicationFactory finds the app through this entry point).</summary>
public partial class Program;
