using System.CommandLine;
using System.CommandLine.Parsing;

namespace Atelier.Commands;

/// <summary>Parses and runs a command line. A wrong one is answered on standard error with exit code 64; nothing starts.</summary>
internal static class Cli
{
    public static async Task<int> RunAsync(RootCommand root, string[] args)
    {
        // No response files (@file): every argument reaches the verb as written, a configuration value starting with @ too.
        var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parse.Errors.Count > 0)
        {
            var command = CommandPath(parse.CommandResult);
            foreach (var error in parse.Errors)
            {
                Console.Error.WriteLine($"{command}: {error.Message}");
            }

            Console.Error.WriteLine($"See '{command} --help'.");
            return ExitCodes.Usage;
        }

        // The verbs stop on Ctrl-C and SIGTERM themselves (the host's graceful stop, the worker's), and an exception that
        // ends a verb ends the process with its stack trace, as before: System.CommandLine handles neither.
        return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false });
    }

    private static string CommandPath(CommandResult? command)
    {
        var path = new List<string>();
        for (var c = command; c is not null; c = c.Parent as CommandResult)
        {
            path.Insert(0, c.Command.Name);
        }

        return string.Join(' ', path);
    }
}
