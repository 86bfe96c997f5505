using System.CommandLine;
using Atelier.Commands;

// One class per verb under Commands/; `atelier <verb> --help` describes each. Without a verb: serve, on its defaults.
var root = new RootCommand("Atelier: a self-hosted, multi-tenant platform for AI image generation")
{
    new ServeCommand(),
    new WorkerCommand(),
    new EngineCommand(),
    new ModelsCommand(),
    new VersionCommand(),
};
root.SetAction(_ => ServeCommand.Serve([]));
return await Cli.RunAsync(root, args);
