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

    private readonly Option<string> _device = new("--device")
    {
        Description = $"Where it runs: {Atelier.Engine.Pipeline.EngineDevice.Syntax} (Atelier:Engine:Device; CUDA needs the GPU build: README, \"GPU workers\") [default: cpu]",
        HelpName = "DEVICE",
    };

    private readonly Option<bool> _deviceFallback = new("--device-fallback")
    {
        Description = $"With --device cuda: when CUDA cannot start, run on the CPU with a warning instead of stopping (exit code {ExitCodes.DeviceUnavailable}) (Atelier:Engine:DeviceFallback)",
    };

    private readonly Argument<string[]> _configuration = ConfigurationArguments.Create();

    public EngineCommand()
        : base("engine", "Run the built-in diffusion engine alone as an AUTOMATIC1111-compatible server")
    {
        Options.Add(_urls);
        Options.Add(_models);
        Options.Add(_device);
        Options.Add(_deviceFallback);
        Arguments.Add(_configuration);
        _device.Validators.Add(r =>
        {
            if (Atelier.Engine.Pipeline.EngineDevice.Parse(r.GetValueOrDefault<string>()) is null)
            {
                r.AddError($"--device must be {Atelier.Engine.Pipeline.EngineDevice.Syntax}, not '{r.GetValueOrDefault<string>()}'.");
            }
        });
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

        if (parse.GetValue(_device) is { } device)
        {
            configuration.Add($"--{EngineOptions.SectionName}:{nameof(EngineOptions.Device)}={device}");
        }

        if (parse.GetValue(_deviceFallback))
        {
            configuration.Add($"--{EngineOptions.SectionName}:{nameof(EngineOptions.DeviceFallback)}=true");
        }

        // As serve: appsettings.json beside the executable, whatever the working directory (where data/models is).
        Microsoft.AspNetCore.Builder.WebApplication app;
        try
        {
            app = EngineServer.Build(["--contentRoot", AppContext.BaseDirectory, .. configuration]);
        }
        catch (Atelier.Engine.Pipeline.DeviceUnavailableException e)
        {
            Console.Error.WriteLine($"atelier engine: {e.Message}");
            return ExitCodes.DeviceUnavailable;
        }

        app.Run();
        return ExitCodes.Ok;
    }
}
