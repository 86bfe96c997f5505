using System.CommandLine;
using Atelier.Engine.Onnx;

namespace Atelier.Commands;

/// <summary><c>atelier models</c>: model files on this machine.</summary>
internal sealed class ModelsCommand : Command
{
    public ModelsCommand()
        : base("models", "Model files on this machine")
    {
        var folder = new Argument<string>("folder")
        {
            Description = "The models folder; the demo model goes into its atelier-demo/ (a relative folder is taken from the working directory)",
            DefaultValueFactory = _ => Path.Combine("data", "models"),
        };
        var demo = new Command("demo", "Write the tiny demo model (no download; it draws noise-like pictures, but every part of the pipeline runs)")
        {
            folder,
        };
        demo.SetAction(parse =>
        {
            Console.WriteLine($"Demo model in {DemoModel.Ensure(parse.GetValue(folder)!)}");
            return ExitCodes.Ok;
        });
        Subcommands.Add(demo);
    }
}
