using System.CommandLine;
using Atelier.Client;

namespace Atelier.Commands;

/// <summary><c>atelier apps</c>: the tenant's apps (a tenant admin token, or the platform admin key with a tenant).</summary>
internal sealed class AppsCommand : Command
{
    private static readonly (string, string)[] Columns = [("id", "id"), ("name", "name"), ("description", "description"), ("created", "createdAt")];

    public AppsCommand()
        : base("apps", "Apps of the tenant (a tenant admin token)")
    {
        var options = new ClientOptions();
        Subcommands.Add(ClientVerb.Create(options, "list", "List the apps", async (parse, api, output, ct) =>
        {
            output.PrintList(await api.GetAsync("api/v1/apps?pageSize=100", ct), Columns);
            return ExitCodes.Ok;
        }));

        var name = new Argument<string>("name") { Description = "The app's name (1-64 characters)" };
        var description = new Option<string>("--description") { Description = "What the app is for", HelpName = "TEXT" };
        Subcommands.Add(ClientVerb.Create(options, "create", "Create an app", async (parse, api, output, ct) =>
        {
            output.PrintObject(await api.PostAsync("api/v1/apps", new { name = parse.GetValue(name), description = parse.GetValue(description) }, ct), Columns);
            return ExitCodes.Ok;
        }, name, description));

        var id = new Argument<string>("id") { Description = "The app's id" };
        Subcommands.Add(ClientVerb.Create(options, "delete", "Delete an app: its tokens are revoked, its undelivered webhook messages ended", async (parse, api, output, ct) =>
        {
            var appId = parse.GetValue(id)!;
            await api.DeleteAsync($"api/v1/apps/{Uri.EscapeDataString(appId)}", ct);
            output.Note($"App {appId} deleted.");
            if (output.Json)
            {
                Console.WriteLine($$"""{"deleted": "{{appId}}"}""");
            }

            return ExitCodes.Ok;
        }, id));
    }
}
