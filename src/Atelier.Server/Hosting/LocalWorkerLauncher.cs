using System.Diagnostics;
using Atelier.Core.Platform;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Atelier.Server.Hosting;

/// <summary>
/// Starts <c>atelier worker</c> as a child process once the server listens, pointed at the server's loopback address
/// with the built-in engine, and starts it again if it dies. Stops it with the server.
/// </summary>
public sealed partial class LocalWorkerLauncher(EmbeddedOptions options, ServerOptions server, IServer host, IHostApplicationLifetime lifetime,
    IServiceScopeFactory scopes, TimeProvider clock, ILogger<LocalWorkerLauncher> logger) : BackgroundService
{
    private Process? _child;

    /// <summary>The exit code of <c>atelier worker</c> when the server refused its key (ExitCodes.KeyRefused in the CLI).</summary>
    public const int WorkerKeyRefusedExitCode = 77;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.LocalWorker)
        {
            return;
        }

        var started = new TaskCompletionSource();
        using var registration = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(stoppingToken);
        var address = host.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
                      ?? throw new InvalidOperationException("The server has no address for the local worker.");
        address = address.Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal).Replace("://[::]", "://127.0.0.1", StringComparison.Ordinal)
            .Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal);
        string secret;
        using (var scope = scopes.CreateScope())
        {
            secret = await scope.ServiceProvider.GetRequiredService<EmbeddedSetup>().IssueLocalWorkerKeyAsync(server.DataDirectory, stoppingToken);
        }

        var backoff = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            var began = clock.GetTimestamp();
            _child = Process.Start(StartInfo(address, secret));
            LogStarted(logger, _child!.Id, address);
            try
            {
                await _child.WaitForExitAsync(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            LogExited(logger, _child.ExitCode);
            if (_child.ExitCode == WorkerKeyRefusedExitCode)
            {
                // Its key was refused (revoked by an operator): the next child gets a fresh one.
                using var scope = scopes.CreateScope();
                secret = await scope.ServiceProvider.GetRequiredService<EmbeddedSetup>().IssueLocalWorkerKeyAsync(server.DataDirectory, stoppingToken);
            }

            backoff = clock.GetElapsedTime(began) > TimeSpan.FromMinutes(1) ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(Math.Min(30, backoff.TotalSeconds * 2));
            await Task.Delay(backoff, clock, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private ProcessStartInfo StartInfo(string address, string secret)
    {
        var (file, prefix) = Core.Common.ThisExecutable.Command(options.LocalWorkerCommand);
        var info = new ProcessStartInfo(file) { UseShellExecute = false };
        foreach (var a in prefix)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var a in new[] { "worker", "--server", address, "--engine", options.LocalWorkerEngine, "--slots", options.LocalWorkerSlots.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--id", $"local-worker-{EmbeddedSetup.LocalSuffix(server.DataDirectory)}", "--models", Path.Combine(server.DataDirectory, "models"),
                     "--parent-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["ATELIER_WORKER_TOKEN"] = secret;
        return info;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (_child is { HasExited: false } child)
        {
            child.Kill(entireProcessTree: true);
            await child.WaitForExitAsync(cancellationToken);
        }
    }

    public override void Dispose()
    {
        _child?.Dispose();
        base.Dispose();
    }

    [LoggerMessage(1200, LogLevel.Information, "Local worker started (pid {Pid}) against {Address}")]
    private static partial void LogStarted(ILogger logger, int pid, string address);

    [LoggerMessage(1201, LogLevel.Warning, "Local worker exited with code {ExitCode}; starting it again")]
    private static partial void LogExited(ILogger logger, int exitCode);
}
