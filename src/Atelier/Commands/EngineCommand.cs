using System.CommandLine;
using Atelier.Worker.A1111;

namespace Atelier.Commands;

/// <summary><c>atelier engine</c>: the built-in engine alone, speaking the AUTOMATIC1111 API.</summary>
internal sealed class EngineCommand : Command
{
    private static readonly EngineOptions Defaults = new();

    private readonly Option<string> _urls = new("--urls")
    {
        Description = $"Where to listen (Atelier:Engine:Urls) [default: {Defaults.Urls}]",
        HelpName = "URLS",
    };

    private readonly Option<string> _models = new("--models")
    {
        Description = "The folder of diffusers ONNX model folders; the demo model is written there when it has none " +
                      $"(Atelier:Engine:ModelsDirectory) [default: ./{Defaults.ModelsDirectory} of the working directory]",
        HelpName = "DIR",
    };

    private readonly Argument<string[]> _configuration = ConfigurationArguments.Create();

    public EngineCommand()
        : base("engine", "Run the built-in diffusion engine alone as an AUTOMATIC1111-compatible server")
    {
        Options.Add(_urls);
        Options.Add(_models);
        Arguments.Add(_configuration);
        SetAction(Run);
    }

    private int Run(ParseResult parse)
    {
        var configuration = new List<string>(parse.GetValue(_configuration) ?? []);
        if (parse.GetValue(_urls) is { } urls)
        {
            configuration.Add($"--{EngineOptions.SectionName}:{nameof(EngineOptions.Urls)}={urls}");
        }

        if (parse.GetValue(_models) is { } models)
        {
            configuration.Add($"--{EngineOptions.SectionName}:{nameof(EngineOptions.ModelsDirectory)}={models}");
        }

        // As serve: appsettings.json beside the executable, whatever the working directory (where data/models is).
        EngineServer.Build(["--contentRoot", AppContext.BaseDirectory, .. configuration]).Run();
        return ExitCodes.Ok;
    }
}
