namespace Atelier.Commands;

/// <summary>The process exit codes of the CLI (the sysexits numbers where one fits).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>Client verbs: the server refused the request (invalid input, a conflict, a limit), or the job failed or was canceled.</summary>
    public const int Failed = 1;
    /// <summary>The command line was wrong: an unknown verb or option, a missing or malformed value (EX_USAGE).</summary>
    public const int Usage = 64;
    /// <summary>Client verbs: the server answered 404 (no such tenant, app, token, job …), or a local file named does not exist (EX_NOINPUT).</summary>
    public const int NotFound = 66;
    /// <summary>Client verbs: no server or credential known: no <c>--server</c>/<c>--token</c>, no <c>ATELIER_SERVER</c>/<c>ATELIER_TOKEN</c>, no <c>atelier login</c> (EX_NOUSER).</summary>
    public const int NotLoggedIn = 67;
    /// <summary>Client verbs: the server could not be reached (connection refused, DNS, TLS, timeout) (EX_NOHOST).</summary>
    public const int Network = 68;
    /// <summary>A worker whose parent process (the server that started it) is gone (EX_UNAVAILABLE).</summary>
    public const int ParentGone = 69;
    /// <summary>A worker whose model cache folder cannot be used: another worker process has it, or it cannot be written (EX_CANTCREAT).</summary>
    public const int CacheUnavailable = 73;
    /// <summary>
    /// <c>atelier worker</c> and <c>atelier engine</c>: the device named by <c>--device</c> cannot run (a CPU build asked for
    /// CUDA, or CUDA would not start) and <c>--device-fallback</c> was not given (EX_OSERR).
    /// </summary>
    public const int DeviceUnavailable = 71;
    /// <summary>Client verbs: the server answered 5xx (EX_SOFTWARE: its log has the request id).</summary>
    public const int ServerError = 70;
    /// <summary>A worker whose key the server refused: revoked, replaced or unknown (EX_NOPERM).</summary>
    public const int KeyRefused = 77;
    /// <summary>Client verbs: the server refused the credential (401) or its rights (403) (EX_NOPERM, as for a worker's key).</summary>
    public const int Unauthorized = 77;
    /// <summary>The server's configuration is invalid; every problem is written to standard error (EX_CONFIG).</summary>
    public const int Config = Server.AtelierServer.InvalidConfigurationExitCode;

    /// <summary>The exit codes as <c>atelier --help</c> lists them.</summary>
    public const string Help = """
        Exit codes: 0 ok; 1 refused by the server (invalid input, conflict, limit) or the job failed; 64 usage (an unknown verb or option);
        66 not found (404, or a missing local file); 67 not logged in; 68 network (the server cannot be reached); 70 server error (5xx);
        69 worker parent gone; 71 worker/engine device unavailable; 73 worker cache unavailable; 77 unauthorized (401/403; a worker's refused key); 78 invalid server configuration.
        Client verbs read --server/--token, else $ATELIER_SERVER/$ATELIER_TOKEN, else the saved login (atelier login). See docs/cli.md.
        """;
}
