using System.CommandLine;
using System.Text.Json;
using Atelier.Client;

namespace Atelier.Commands;

/// <summary><c>atelier login</c>: checks a credential against a server and remembers both for the client verbs.</summary>
internal sealed class LoginCommand : Command
{
    public LoginCommand()
        : base("login", $"Check a credential against a server and save both (mode 0600) for the client verbs [file: ${ClientConfig.PathVariable}, else $XDG_CONFIG_HOME/atelier/config.json, else ~/.config/atelier/config.json]")
    {
        var server = new Option<string>("--server") { Description = "The server's address, e.g. https://atelier.example.com", HelpName = "URL", Required = true };
        var token = new Option<string>("--token") { Description = "The credential (atk_… or atpk_…); prefer --token-stdin, which keeps it out of the shell history and the process list", HelpName = "TOKEN" };
        var tokenStdin = new Option<bool>("--token-stdin") { Description = "Read the credential from standard input (its first line)" };
        var tenant = new Option<string>("--tenant") { Description = "The tenant the platform admin key acts in, saved too", HelpName = "ID" };
        var operatorId = new Option<string>("--operator") { Description = "The operator id to send on changes, saved too", HelpName = "ID" };
        Options.Add(server);
        Options.Add(token);
        Options.Add(tokenStdin);
        Options.Add(tenant);
        Options.Add(operatorId);
        Validators.Add(r =>
        {
            if ((r.GetValue(token) is not null) == r.GetValue(tokenStdin))
            {
                r.AddError("Give exactly one of --token and --token-stdin.");
            }
        });
        SetAction((parse, ct) => ClientVerb.GuardAsync(async () =>
        {
            var secret = parse.GetValue(tokenStdin) ? (await Console.In.ReadLineAsync(ct))?.Trim() : parse.GetValue(token)?.Trim();
            if (string.IsNullOrEmpty(secret))
            {
                throw new ClientException(ExitCodes.Usage, "No credential on standard input.");
            }

            var connection = new Connection(Connection.ParseServer(parse.GetValue(server)!), secret, parse.GetValue(tenant), parse.GetValue(operatorId) ?? ClientOptions.DefaultOperator);
            using var api = new AtelierApi(connection);
            var who = await WhoAsync(api, ct);
            new ClientConfig(connection.Server.ToString().TrimEnd('/'), secret, parse.GetValue(tenant), parse.GetValue(operatorId)).Save();
            Console.WriteLine($"Logged in to {connection.Server.ToString().TrimEnd('/')} as {who}. Saved in {ClientConfig.FilePath}.");
            return ExitCodes.Ok;
        }));
    }

    /// <summary>A cheap authenticated read that says who the credential is (the platform key has no tenant of its own: it lists one tenant).</summary>
    private static async Task<string> WhoAsync(AtelierApi api, CancellationToken ct)
    {
        if (api.Connection.IsPlatformKey && api.Connection.Tenant is null)
        {
            await api.GetAsync("api/v1/tenants?pageSize=1", ct);
            return "the platform admin";
        }

        var me = await api.GetAsync("api/v1/me", ct);
        return me.GetProperty("kind").GetString() == "platformAdmin"
            ? $"the platform admin in tenant {Output.Cell(me, "tenantId")}"
            : $"token {Output.Cell(me, "credentialId")} of tenant {Output.Cell(me, "tenantId")} (scopes {Output.Cell(me, "scopes")})";
    }
}

/// <summary><c>atelier logout</c>: forgets the saved login.</summary>
internal sealed class LogoutCommand : Command
{
    public LogoutCommand()
        : base("logout", "Forget the saved login (the credential stays valid on the server: revoke it there to end it)")
    {
        SetAction(_ =>
        {
            Console.WriteLine(ClientConfig.Delete() ? $"Logged out: {ClientConfig.FilePath} removed." : "Not logged in.");
            return ExitCodes.Ok;
        });
    }
}
