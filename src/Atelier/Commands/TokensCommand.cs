using System.CommandLine;
using Atelier.Client;

namespace Atelier.Commands;

/// <summary><c>atelier tokens</c>: an app's API tokens (a tenant admin token).</summary>
internal sealed class TokensCommand : Command
{
    private static readonly (string, string)[] Columns =
        [("id", "id"), ("app", "appId"), ("name", "name"), ("scopes", "scopes"), ("prefix", "displayPrefix"), ("expires", "expiresAt"), ("disabled", "disabled"), ("revoked", "revokedAt"), ("last used", "lastUsedAt")];

    public TokensCommand()
        : base("tokens", "API tokens of an app (a tenant admin token); a secret is shown once, when issued")
    {
        var options = new ClientOptions();
        var listApp = new Option<string>("--app") { Description = "The app whose tokens to list", HelpName = "ID", Required = true };
        Subcommands.Add(ClientVerb.Create(options, "list", "List an app's tokens (never their secrets)", async (parse, api, output, ct) =>
        {
            output.PrintList(await api.GetAsync($"api/v1/apps/{Uri.EscapeDataString(parse.GetValue(listApp)!)}/tokens?pageSize=100", ct), Columns);
            return ExitCodes.Ok;
        }, listApp));

        var app = new Option<string>("--app") { Description = "The app the token belongs to", HelpName = "ID", Required = true };
        var name = new Option<string>("--name") { Description = "The token's name", HelpName = "NAME" };
        var scope = new Option<string[]>("--scope")
        {
            Description = "admin (the tenant's admin API) or app (an app's backend); repeat for both",
            HelpName = "SCOPE",
            DefaultValueFactory = _ => ["app"],
            AllowMultipleArgumentsPerToken = false,
        };
        scope.AcceptOnlyFromAmong("admin", "app");
        var expires = new Option<DateTimeOffset?>("--expires") { Description = "When the token stops working (ISO 8601, e.g. 2027-01-31T00:00:00Z)", HelpName = "TIME" };
        Subcommands.Add(ClientVerb.Create(options, "issue", "Issue a token; its secret is printed this once and never again", async (parse, api, output, ct) =>
        {
            var issued = await api.PostAsync($"api/v1/apps/{Uri.EscapeDataString(parse.GetValue(app)!)}/tokens",
                new { name = parse.GetValue(name), scopes = parse.GetValue(scope), expiresAt = parse.GetValue(expires)?.UtcDateTime }, ct);
            output.Print(issued, d => Output.ListTable([d.GetProperty("token")], Columns));
            if (!output.Json)
            {
                // A line of its own, never wrapped or cut by the table: the one time the secret is shown.
                Console.WriteLine($"secret (shown this once; keep it now): {issued.GetProperty("secret").GetString()}");
            }
            return ExitCodes.Ok;
        }, app, name, scope, expires));

        var id = new Argument<string>("id") { Description = "The token's id" };
        Subcommands.Add(ClientVerb.Create(options, "revoke", "Revoke a token (its row stays, for the audit trail)", async (parse, api, output, ct) =>
        {
            var tokenId = parse.GetValue(id)!;
            await api.DeleteAsync($"api/v1/tokens/{Uri.EscapeDataString(tokenId)}", ct);
            output.PrintObject(await api.GetAsync($"api/v1/tokens/{Uri.EscapeDataString(tokenId)}", ct), Columns);
            return ExitCodes.Ok;
        }, id));
    }
}
