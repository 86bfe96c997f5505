namespace Atelier.Commands;

/// <summary>The process exit codes of the CLI (the sysexits numbers where one fits).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The command line was wrong: an unknown verb or option, a missing or malformed value (EX_USAGE).</summary>
    public const int Usage = 64;
    /// <summary>A worker whose parent process (the server that started it) is gone (EX_UNAVAILABLE).</summary>
    public const int ParentGone = 69;
    /// <summary>A worker whose model cache folder cannot be used: another worker process has it, or it cannot be written (EX_CANTCREAT).</summary>
    public const int CacheUnavailable = 73;
    /// <summary>A worker whose key the server refused: revoked, replaced or unknown (EX_NOPERM).</summary>
    public const int KeyRefused = 77;
    /// <summary>The server's configuration is invalid; every problem is written to standard error (EX_CONFIG).</summary>
    public const int Config = Server.AtelierServer.InvalidConfigurationExitCode;
}
