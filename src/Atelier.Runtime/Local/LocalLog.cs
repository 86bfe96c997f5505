using Microsoft.Extensions.Logging;

namespace Atelier.Runtime.Local;

/// <summary>The local backend's log messages; event ids 3050-3099 are stable (3000-3049 belong to model downloads).</summary>
internal static partial class LocalLog
{
    [LoggerMessage(3050, LogLevel.Information, "Starting instance {InstanceId} of {Function}/{Revision}: {Command} on port {Port}")]
    public static partial void InstanceStarting(this ILogger logger, string instanceId, string function, string revision, string command, int port);

    [LoggerMessage(3051, LogLevel.Information, "Instance {InstanceId} of {Function}/{Revision} is ready (pid {Pid}, port {Port})")]
    public static partial void InstanceReady(this ILogger logger, string instanceId, string function, string revision, int pid, int port);

    [LoggerMessage(3052, LogLevel.Warning, "Instance {InstanceId} of {Function}/{Revision} failed to start ({Code}): {Reason}")]
    public static partial void InstanceStartFailed(this ILogger logger, string instanceId, string function, string revision, string code, string reason);

    [LoggerMessage(3053, LogLevel.Information, "[{InstanceId} {Stream}] {Line}")]
    public static partial void InstanceOutput(this ILogger logger, string instanceId, string stream, string line);

    [LoggerMessage(3054, LogLevel.Information, "Instance {InstanceId} of {Function}/{Revision} stopped: {Reason}")]
    public static partial void InstanceStopped(this ILogger logger, string instanceId, string function, string revision, string reason);

    [LoggerMessage(3055, LogLevel.Warning, "Instance {InstanceId} of {Function}/{Revision} exited unexpectedly with code {ExitCode}")]
    public static partial void InstanceCrashed(this ILogger logger, string instanceId, string function, string revision, int exitCode);

    [LoggerMessage(3056, LogLevel.Warning, "{Function}/{Revision} is below its warm minimum of {Target}: replacement attempt {Attempt} in {Delay}")]
    public static partial void RestartScheduled(this ILogger logger, string function, string revision, int target, int attempt, TimeSpan delay);

    [LoggerMessage(3057, LogLevel.Error, "Replacing a warm instance of {Function}/{Revision} failed ({Code}): {Reason}")]
    public static partial void RestartFailed(this ILogger logger, string function, string revision, string code, string reason);

    [LoggerMessage(3058, LogLevel.Information, "Stopping instance {InstanceId} of {Function}/{Revision}: idle since {LastUsed:O}")]
    public static partial void IdleStopping(this ILogger logger, string instanceId, string function, string revision, DateTimeOffset lastUsed);

    [LoggerMessage(3059, LogLevel.Warning, "Killed the leftover process group {Pgid} of instance {InstanceId} (pid file {PidFile})")]
    public static partial void StaleKilled(this ILogger logger, int pgid, string instanceId, string pidFile);

    [LoggerMessage(3060, LogLevel.Information, "Removed the pid file of instance {InstanceId}: its process is gone")]
    public static partial void StaleFileRemoved(this ILogger logger, string instanceId);

    [LoggerMessage(3061, LogLevel.Warning, "Instance {InstanceId} did not exit within {Grace} of SIGTERM: killing its process group")]
    public static partial void StopEscalated(this ILogger logger, string instanceId, TimeSpan grace);

    [LoggerMessage(3062, LogLevel.Error, "The idle check failed")]
    public static partial void IdleCheckFailed(this ILogger logger, Exception exception);

    [LoggerMessage(3063, LogLevel.Information, "Instance {InstanceId} was reported failing a request; it has exited: {Exited}")]
    public static partial void FailureReported(this ILogger logger, string instanceId, bool exited);

    [LoggerMessage(3064, LogLevel.Warning, "/usr/bin/setsid is missing: instances run in the server's process group and only their main process is signalled")]
    public static partial void SetsidMissing(this ILogger logger);

    [LoggerMessage(3065, LogLevel.Warning, "Could not write the instance log {Path}: {Reason}")]
    public static partial void LogFileFailed(this ILogger logger, string path, string reason);
}
