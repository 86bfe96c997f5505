using System.Diagnostics;
using System.Security.Cryptography;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Core.Models;
using Atelier.Core.Security;
using Atelier.Core.Tenancy;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Storage;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Server.Hosting;

/// <summary>The built-in demo model, the demo tenant and the local worker's key.</summary>
public static class Embedded
{
    public const string DemoModel = "atelier-demo";
    /// <summary>
    /// The local worker's key id and worker id are this replica's own (its machine and data folder), so that replicas
    /// sharing a database never replace each other's local worker key.
    /// </summary>
    public static string LocalSuffix(string dataDirectory) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes($"{Environment.MachineName}\n{Path.GetFullPath(dataDirectory)}")))[..10];

    /// <summary>Writes the demo pipeline under the data directory and stores its UNet as a public blob, so tenants can get it without a download.</summary>
    public static async Task RegisterDemoModelAsync(IServiceProvider sp, string dataDirectory, CancellationToken ct)
    {
        var folder = Engine.Onnx.DemoModel.Ensure(Path.Combine(dataDirectory, "models"));
        var unet = Path.Combine(folder, "unet", "model.onnx");
        var bytes = await File.ReadAllBytesAsync(unet, ct);
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var store = sp.GetRequiredService<IObjectStore>();
        if (await store.SizeAsync(ObjectStores.BlobKey(sha), ct) != bytes.Length)
        {
            using var content = new MemoryStream(bytes);
            await store.PutAsync(ObjectStores.BlobKey(sha), content, bytes.Length, ct);
        }

        var db = sp.GetRequiredService<AtelierDb>();
        await BlobRegistry.RegisterAsync(db, new BlobFacts(sha, bytes.Length, "onnx", "onnx", sha[..10], null, null, []), BlobRegistry.PublicOwner,
            sp.GetRequiredService<TimeProvider>(), ct);
        sp.GetRequiredService<BuiltinModels>().Add(new BuiltinModelFile(DemoModel, "model.onnx", sha, bytes.Length, "onnx"));
    }

    /// <summary>Creates the demo tenant once (account <c>demo</c>); returns its new API token, or null when it existed already.</summary>
    public static async Task<string?> EnsureDemoTenantAsync(IServiceProvider sp, CancellationToken ct)
    {
        var db = sp.GetRequiredService<AtelierDb>();
        if (await db.Accounts.AnyAsync(a => a.Uid == "demo", ct))
        {
            return null;
        }

        var ctx = sp.GetRequiredService<RequestContext>();
        ctx.Caller = new Caller(CallerKind.PlatformAdmin, "embedded-setup", null, null, []);
        ctx.OperatorId = "atelier-setup";
        var tenancy = sp.GetRequiredService<TenancyService>();
        await tenancy.CreateAccountAsync(new CreateAccountRequest("demo", "Demo"), ct);
        var tenant = await tenancy.CreateTenantAsync(new CreateTenantRequest("demo", "Demo"), ct);
        ctx.TenantId = tenant.Id;
        db.TenantScope = tenant.Id;
        await tenancy.InitAsync(tenant.Id, ct);
        await tenancy.ActivateAsync(tenant.Id, ct);
        var identity = sp.GetRequiredService<IdentityService>();
        var app = await identity.CreateAppAsync(new CreateAppRequest("demo", "Made by the first start of atelier serve"), ct);
        var issued = await sp.GetRequiredService<TokenService>().IssueAsync(app.Id, new IssueTokenRequest("demo", [TokenScope.Admin, TokenScope.App], null), ct);
        var version = await db.ModelVersions.Where(v => db.Models.Any(m => m.Id == v.ModelId && m.Name == DemoModel)).Select(v => v.Id).FirstOrDefaultAsync(ct);
        if (version is not null)
        {
            await db.ApiTokens.Where(t => t.Id == issued.Token.Id).ExecuteUpdateAsync(u => u.SetProperty(t => t.CheckpointVersionId, version), ct);
        }

        return issued.Secret;
    }

    /// <summary>Replaces the local worker's key with a fresh one at every start (its secret lives only in the child's environment).</summary>
    public static async Task<string> IssueLocalWorkerKeyAsync(AtelierDb db, TimeProvider clock, string dataDirectory, CancellationToken ct)
    {
        var id = $"wk_local_{LocalSuffix(dataDirectory)}";
        await db.PlatformKeys.Where(k => k.Id == id).ExecuteDeleteAsync(ct);
        var secret = Secrets.Issue(Secrets.WorkerKeyPrefix);
        db.PlatformKeys.Add(new PlatformKey
        {
            Id = id, Name = "local worker", Scope = "worker", SecretHash = Secrets.Hash(secret), DisplayPrefix = Secrets.DisplayPrefix(secret),
            CreatedAt = clock.GetUtcNow().UtcDateTime,
        });
        await db.SaveChangesAsync(ct);
        return secret;
    }
}

/// <summary>
/// Starts <c>atelier worker</c> as a child process once the server listens, pointed at the server's loopback address
/// with the built-in engine, and starts it again if it dies. Stops it with the server.
/// </summary>
public sealed partial class LocalWorkerLauncher(EmbeddedOptions options, ServerOptions server, IServer host, IHostApplicationLifetime lifetime,
    IServiceScopeFactory scopes, ILogger<LocalWorkerLauncher> logger) : BackgroundService
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
            secret = await Embedded.IssueLocalWorkerKeyAsync(scope.ServiceProvider.GetRequiredService<AtelierDb>(),
                scope.ServiceProvider.GetRequiredService<TimeProvider>(), server.DataDirectory, stoppingToken);
        }

        var backoff = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            var began = DateTime.UtcNow;
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
                secret = await Embedded.IssueLocalWorkerKeyAsync(scope.ServiceProvider.GetRequiredService<AtelierDb>(),
                    scope.ServiceProvider.GetRequiredService<TimeProvider>(), server.DataDirectory, stoppingToken);
            }

            backoff = DateTime.UtcNow - began > TimeSpan.FromMinutes(1) ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(Math.Min(30, backoff.TotalSeconds * 2));
            await Task.Delay(backoff, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private ProcessStartInfo StartInfo(string address, string secret)
    {
        var (file, prefix) = Command();
        var info = new ProcessStartInfo(file) { UseShellExecute = false };
        foreach (var a in prefix)
        {
            info.ArgumentList.Add(a);
        }

        foreach (var a in new[] { "worker", "--server", address, "--engine", options.LocalWorkerEngine, "--slots", options.LocalWorkerSlots.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--id", $"local-worker-{Embedded.LocalSuffix(server.DataDirectory)}", "--models", Path.Combine(server.DataDirectory, "models"),
                     "--parent-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["ATELIER_WORKER_TOKEN"] = secret;
        return info;
    }

    /// <summary>This executable (run as <c>atelier</c>, or as <c>dotnet atelier.dll</c>), unless configured.</summary>
    private (string File, string[] Prefix) Command()
    {
        if (options.LocalWorkerCommand is { Length: > 0 } configured)
        {
            return configured.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? ("dotnet", [configured]) : (configured, []);
        }

        var process = Environment.ProcessPath!;
        var entry = System.Reflection.Assembly.GetEntryAssembly()!.Location;
        return Path.GetFileNameWithoutExtension(process) == "dotnet" ? (process, [entry]) : (process, []);
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
