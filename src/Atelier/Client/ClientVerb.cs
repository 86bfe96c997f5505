using System.CommandLine;
using Atelier.Commands;

namespace Atelier.Client;

/// <summary>Builds the client verbs: the common options added, the API connected, a failure turned into its exit code and message.</summary>
internal static class ClientVerb
{
    public delegate Task<int> Run(ParseResult parse, AtelierApi api, Output output, CancellationToken ct);

    public static Command Create(ClientOptions options, string name, string description, Run run, params Symbol[] symbols) =>
        Configure(new Command(name, description), options, run, symbols);

    /// <summary>Makes <paramref name="command"/> a client verb: its arguments and options, the common ones, and its action.</summary>
    public static Command Configure(Command command, ClientOptions options, Run run, params Symbol[] symbols)
    {
        foreach (var symbol in symbols)
        {
            switch (symbol)
            {
                case Argument argument:
                    command.Arguments.Add(argument);
                    break;
                case Option option:
                    command.Options.Add(option);
                    break;
                default:
                    throw new ArgumentException($"{symbol.Name} is neither an argument nor an option", nameof(symbols));
            }
        }

        options.AddTo(command);
        command.SetAction((parse, ct) => GuardAsync(async () =>
        {
            using var api = new AtelierApi(options.Resolve(parse));
            return await run(parse, api, options.Output(parse), ct);
        }));
        return command;
    }

    /// <summary>Runs a verb: a <see cref="ClientException"/> is printed on standard error and becomes the exit code.</summary>
    public static async Task<int> GuardAsync(Func<Task<int>> run)
    {
        try
        {
            return await run();
        }
        catch (ClientException e)
        {
            await Console.Error.WriteLineAsync($"atelier: {e.Message}");
            return e.ExitCode;
        }
    }
}
