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
    new LoginCommand(),
    new LogoutCommand(),
    new TenantsCommand(),
    new AppsCommand(),
    new TokensCommand(),
    new GenerateCommand(),
    new JobsCommand(),
    new ImagesCommand(),
    new UsageCommand(),
};
root.Description += "\n\n" + ExitCodes.Help;
root.SetAction(_ => ServeCommand.Serve([]));
return await Cli.RunAsync(root, args);
