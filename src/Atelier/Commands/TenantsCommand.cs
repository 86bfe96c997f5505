using System.CommandLine;
using Atelier.Client;

namespace Atelier.Commands;

/// <summary><c>atelier tenants</c>: the platform admin's tenants (the platform admin key).</summary>
internal sealed class TenantsCommand : Command
{
    private static readonly (string, string)[] Columns = [("id", "id"), ("name", "name"), ("account", "accountUid"), ("state", "state"), ("created", "createdAt")];

    public TenantsCommand()
        : base("tenants", "Tenants (the platform admin key)")
    {
        var options = new ClientOptions();
        var state = new Option<string>("--state") { Description = "Only tenants in this state (active, inactive, …)", HelpName = "STATE" };
        Subcommands.Add(ClientVerb.Create(options, "list", "List the tenants", async (parse, api, output, ct) =>
        {
            var query = parse.GetValue(state) is { } s ? $"&state={Uri.EscapeDataString(s)}" : "";
            output.PrintList(await api.GetAsync($"api/v1/tenants?pageSize=100{query}", ct), Columns);
            return ExitCodes.Ok;
        }, state));

        var name = new Argument<string>("name") { Description = "The tenant's name" };
        var account = new Option<string>("--account") { Description = "The account uid the tenant belongs to (made when it does not exist)", HelpName = "UID", Required = true };
        var inactive = new Option<bool>("--no-activate") { Description = "Initialise the tenant but leave it inactive" };
        Subcommands.Add(ClientVerb.Create(options, "create", "Create a tenant: its account if needed, the tenant, its defaults (init), and activate it", async (parse, api, output, ct) =>
        {
            var uid = parse.GetValue(account)!;
            try
            {
                await api.GetAsync($"api/v1/accounts/{Uri.EscapeDataString(uid)}", ct);
            }
            catch (ClientException e) when (e.Status == 404)
            {
                await api.PostAsync("api/v1/accounts", new { uid, name = uid }, ct);
            }

            var tenant = await api.PostAsync("api/v1/tenants", new { accountUid = uid, name = parse.GetValue(name) }, ct);
            var id = tenant.GetProperty("id").GetString()!;
            await api.PostAsync($"api/v1/tenants/{id}/init", null, ct);
            if (!parse.GetValue(inactive))
            {
                await api.PostAsync($"api/v1/tenants/{id}/activate", null, ct);
            }

            output.PrintObject(await api.GetAsync($"api/v1/tenants/{id}", ct), Columns);
            return ExitCodes.Ok;
        }, name, account, inactive));

        var id = new Argument<string>("id") { Description = "The tenant's id" };
        Subcommands.Add(ClientVerb.Create(options, "show", "Show one tenant", async (parse, api, output, ct) =>
        {
            output.PrintObject(await api.GetAsync($"api/v1/tenants/{Uri.EscapeDataString(parse.GetValue(id)!)}", ct),
                [.. Columns, ("initialized", "initializedAt"), ("activated", "activatedAt")]);
            return ExitCodes.Ok;
        }, id));
    }
}
