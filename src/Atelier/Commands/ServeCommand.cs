using System.CommandLine;
using Atelier.Server;
using Atelier.Server.Hosting;

namespace Atelier.Commands;

/// <summary><c>atelier serve</c> (also <c>atelier</c> alone): the platform server.</summary>
internal sealed class ServeCommand : Command
{
    private static readonly ServerOptions Defaults = new();

    private readonly Option<string> _urls = new("--urls")
    {
        Description = $"Where to listen, ';' between addresses (Atelier:Server:Urls) [default: {Defaults.Urls}]",
        HelpName = "URLS",
    };

    private readonly Option<string> _data = new("--data")
    {
        Description = "The data folder: the SQLite file, local objects, keys, models (Atelier:Server:DataDirectory) " +
                      $"[default: ./{Defaults.DataDirectory} of the working directory]",
        HelpName = "DIR",
    };

    private readonly Argument<string[]> _configuration = ConfigurationArguments.Create();

    public ServeCommand()
        : base("serve", "Run the platform server: the HTTP API, and on its defaults a demo tenant and a local worker")
    {
        Options.Add(_urls);
        Options.Add(_data);
        Arguments.Add(_configuration);
        SetAction(Run);
    }

    /// <summary>Runs the server until Ctrl-C or SIGTERM, configured by <paramref name="configuration"/> (<c>--Section:Key=value</c>).</summary>
    public static int Serve(IEnumerable<string> configuration)
    {
        // appsettings.json and defaults/ ship beside the executable; ./data stays in the working directory.
        // A bad configuration is reported (every problem, on standard error) and answered with its own exit code.
        return AtelierServer.Run(["--contentRoot", AppContext.BaseDirectory, .. configuration]);
    }

    private int Run(ParseResult parse)
    {
        var configuration = new List<string>(parse.GetValue(_configuration) ?? []);
        // After the keys given as such: the option is the last word (the command-line provider keeps the last value).
        if (parse.GetValue(_urls) is { } urls)
        {
            configuration.Add($"--{ServerOptions.SectionName}:{nameof(ServerOptions.Urls)}={urls}");
        }

        if (parse.GetValue(_data) is { } data)
        {
            configuration.Add($"--{ServerOptions.SectionName}:{nameof(ServerOptions.DataDirectory)}={data}");
        }

        return Serve(configuration);
    }
}
