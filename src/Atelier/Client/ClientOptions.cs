using System.CommandLine;

namespace Atelier.Client;

/// <summary>
/// The options every client verb takes: where the server is, the credential, the tenant and operator, and how to print.
/// Each falls back to its environment variable, then to what <c>atelier login</c> saved.
/// </summary>
internal sealed class ClientOptions
{
    public const string ServerVariable = "ATELIER_SERVER";
    public const string TokenVariable = "ATELIER_TOKEN";
    public const string TenantVariable = "ATELIER_TENANT";
    public const string OperatorVariable = "ATELIER_OPERATOR";

    /// <summary>The operator id sent on changes when none is named (the audit log's <c>operatorId</c>).</summary>
    public const string DefaultOperator = "cli";

    public Option<string> Server { get; } = new("--server")
    {
        Description = $"The server's address, e.g. https://atelier.example.com [default: ${ServerVariable}, else the login's]",
        HelpName = "URL",
    };

    public Option<string> Token { get; } = new("--token")
    {
        Description = $"The credential: an API token (atk_…) or the platform admin key (atpk_…) [default: ${TokenVariable}, else the login's]",
        HelpName = "TOKEN",
    };

    public Option<string> Tenant { get; } = new("--tenant")
    {
        Description = $"The tenant the platform admin key acts in (X-Tenant-Id) [default: ${TenantVariable}, else the login's]",
        HelpName = "ID",
    };

    public Option<string> Operator { get; } = new("--operator")
    {
        Description = $"The operator id written to the audit log on changes (X-Operator-Id) [default: ${OperatorVariable}, else the login's, else '{DefaultOperator}']",
        HelpName = "ID",
    };

    public Option<bool> Json { get; } = new("--json") { Description = "Print the answer's data as JSON instead of a table" };

    public Option<bool> Quiet { get; } = new("--quiet", "-q") { Description = "No progress bars (they are off anyway when standard error is not a terminal)" };

    /// <summary>Adds the options to a verb (a leaf command).</summary>
    public T AddTo<T>(T command)
        where T : Command
    {
        command.Options.Add(Server);
        command.Options.Add(Token);
        command.Options.Add(Tenant);
        command.Options.Add(Operator);
        command.Options.Add(Json);
        command.Options.Add(Quiet);
        return command;
    }

    /// <summary>The connection the options, the environment and the saved login describe (options first).</summary>
    public Connection Resolve(ParseResult parse)
    {
        var saved = ClientConfig.Load();
        var server = First(parse.GetValue(Server), Environment.GetEnvironmentVariable(ServerVariable), saved?.Server);
        var token = First(parse.GetValue(Token), Environment.GetEnvironmentVariable(TokenVariable), saved?.Token);
        if (server is null || token is null)
        {
            throw new ClientException(Commands.ExitCodes.NotLoggedIn,
                $"Not logged in: run 'atelier login --server URL --token-stdin', or pass --server and --token (or set ${ServerVariable} and ${TokenVariable}).");
        }

        return new Connection(
            Connection.ParseServer(server),
            token,
            First(parse.GetValue(Tenant), Environment.GetEnvironmentVariable(TenantVariable), saved?.Tenant),
            First(parse.GetValue(Operator), Environment.GetEnvironmentVariable(OperatorVariable), saved?.Operator) ?? DefaultOperator);
    }

    public Output Output(ParseResult parse) => new(parse.GetValue(Json), parse.GetValue(Quiet));

    private static string? First(params string?[] values) => values.FirstOrDefault(v => !string.IsNullOrWhiteSpace(v))?.Trim();
}

/// <summary>Where requests go and with what credential.</summary>
internal sealed record Connection(Uri Server, string Token, string? Tenant, string Operator)
{
    public bool IsPlatformKey => Token.StartsWith("atpk_", StringComparison.Ordinal);

    public static Uri ParseServer(string server)
    {
        if (!Uri.TryCreate(server.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || !string.IsNullOrEmpty(uri.Query))
        {
            throw new ClientException(Commands.ExitCodes.Usage, $"--server: '{server}' is not an http:// or https:// address.");
        }

        return new Uri(uri.GetLeftPart(UriPartial.Path).TrimEnd('/') + "/");
    }
}

/// <summary>Ends a verb with an exit code and a message for standard error.</summary>
internal sealed class ClientException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    /// <summary>The server's error code (the <c>errCode</c>, else the catalog code), when the server answered one.</summary>
    public string? ErrorCode { get; init; }

    /// <summary>The HTTP status, when the server answered.</summary>
    public int? Status { get; init; }
}
