namespace Atelier.Server.Hosting;

/// <summary>The server's log events, with stable ids. No secret is ever a parameter here.</summary>
internal static partial class Log
{
    [LoggerMessage(1000, LogLevel.Information, "Database ready: provider {Provider}, migrations applied")]
    public static partial void DatabaseReady(ILogger logger, string provider);

    [LoggerMessage(1001, LogLevel.Warning, "A platform admin key was generated and printed once on standard output; it is stored only as a hash")]
    public static partial void AdminKeyGenerated(ILogger logger);

    [LoggerMessage(1010, LogLevel.Warning, "The demo model was not stored: {Reason}; it is offered once the server starts with room on the storage disk")]
    public static partial void DemoModelNotStored(ILogger logger, string reason);

    [LoggerMessage(1103, LogLevel.Warning, "{Method} {Path} answered 503: the storage disk is full ({Reason})")]
    public static partial void StorageFull(ILogger logger, string method, string path, string reason);

    [LoggerMessage(1002, LogLevel.Information, "Master key {KeyId} from {Source}; {Resealed} webhook secrets sealed again under it")]
    public static partial void MasterKeyReady(ILogger logger, string source, string keyId, int resealed);

    [LoggerMessage(1004, LogLevel.Warning, "A new master key was made at {Path} (owner only): back it up apart from the database; every replica needs the same key (Atelier:Security:MasterKey or KeyFile)")]
    public static partial void MasterKeyCreated(ILogger logger, string path);

    [LoggerMessage(1003, LogLevel.Error, "{Count} stored webhook secrets were sealed with a key this server does not have (Atelier:Security): restore that key, or rotate those apps' secrets")]
    public static partial void SecretsUnreadable(ILogger logger, int count);

    [LoggerMessage(1100, LogLevel.Information, "{Method} {Path} answered {Status} with {Code}")]
    public static partial void RequestFailed(ILogger logger, string method, string path, int status, string code);

    [LoggerMessage(1101, LogLevel.Error, "{Method} {Path} failed in the database: {ErrCode}")]
    public static partial void DatabaseFailure(ILogger logger, Exception exception, string method, string path, string errCode);

    [LoggerMessage(1102, LogLevel.Error, "{Method} {Path} failed unexpectedly")]
    public static partial void UnexpectedFailure(ILogger logger, Exception exception, string method, string path);
}
