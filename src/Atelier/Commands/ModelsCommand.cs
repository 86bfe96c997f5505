using System.CommandLine;
using Atelier.Engine.Onnx;

namespace Atelier.Commands;

/// <summary><c>atelier models</c>: model files on this machine (<c>demo</c>) and the tenant's model library on a server.</summary>
internal sealed partial class ModelsCommand : Command
{
    public ModelsCommand()
        : base("models", "Models: the tenant's library on a server (list, versions, upload, download), and the demo model on this machine")
    {
        var folder = new Argument<string>("folder")
        {
            Description = "The models folder; the demo model goes into its atelier-demo/ (a relative folder is taken from the working directory)",
            DefaultValueFactory = _ => Path.Combine("data", "models"),
        };
        var name = new Option<string>("--name")
        {
            Description = "Write a tiny model of this name instead (its own weights: another model, with another hash), e.g. to upload it",
            HelpName = "NAME",
        };
        name.Validators.Add(r =>
        {
            var value = r.GetValueOrDefault<string>();
            if (value is not null && (value.Length is 0 or > 64 || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') || value.StartsWith('.')))
            {
                r.AddError("--name must be 1 to 64 letters, digits, '-', '_' or '.' (not starting with '.').");
            }
        });
        var demo = new Command("demo", "Write the tiny demo model (no download; it draws noise-like pictures, but every part of the pipeline runs)")
        {
            folder,
            name,
        };
        demo.SetAction(parse =>
        {
            var models = parse.GetValue(folder)!;
            var written = parse.GetValue(name) is { } n ? DemoModel.Write(models, n) : DemoModel.Ensure(models);
            Console.WriteLine($"Demo model in {written}");
            return ExitCodes.Ok;
        });
        Subcommands.Add(demo);
        AddLibraryVerbs();
    }
}
