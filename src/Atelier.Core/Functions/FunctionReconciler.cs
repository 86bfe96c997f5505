using Atelier.Contracts.Errors;
using Atelier.Core.Coordination;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Functions;

/// <summary>
/// Makes every function's backend match its rows: at start (a local backend starts empty after a restart, so every
/// function is applied again and its domains mounted again) and every <see cref="FunctionsOptions.ReconcileIntervalSeconds"/>.
/// A function whose backend lost it, holds an older generation, or reports it failed is applied again; the outcome is
/// recorded as the function's state (<c>ready</c>, or <c>failed</c> with the backend's reason).
/// With several replicas, a function on a backend whose objects all replicas share (kubernetes) is reconciled by the
/// leader alone, so two replicas never apply it at once; a function on a backend whose instances belong to each replica
/// (local: child processes of that server) is reconciled by every replica, each for its own instances.
/// </summary>
public sealed partial class FunctionReconciler(IServiceScopeFactory scopes, TimeProvider clock, IOptions<FunctionsOptions> options, MasterKeys keys,
    IHostApplicationLifetime lifetime, FunctionRouteCache routes, Leadership leadership, ILogger<FunctionReconciler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // After every hosted service has started: the local backend stops a crashed server's leftovers first.
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken);
        }

        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.ReconcileIntervalSeconds), clock);
        do
        {
            try
            {
                await ReconcileAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogPassFailed(logger, e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One pass over every function; answers how many were applied again.</summary>
    public async Task<int> ReconcileAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var ids = await db.Functions.IgnoreQueryFilters().AsNoTracking().OrderBy(f => f.Id).Select(f => f.Id).ToListAsync(ct);
        var applied = 0;
        foreach (var id in ids)
        {
            using var one = scopes.CreateScope();
            if (await ReconcileOneAsync(one.ServiceProvider, id, ct))
            {
                applied++;
            }
        }

        // A recorded state (ready, failed) is what the router checks.
        routes.Clear();
        return applied;
    }

    private async Task<bool> ReconcileOneAsync(IServiceProvider services, string id, CancellationToken ct)
    {
        var db = services.GetRequiredService<AtelierDb>();
        var f = await db.Functions.IgnoreQueryFilters().AsNoTracking().FirstOrDefaultAsync(x => x.Id == id, ct);
        if (f is null)
        {
            return false;
        }

        db.TenantScope = f.TenantId;
        var deployer = services.GetRequiredService<FunctionDeployer>();
        RuntimeRegion region;
        IRuntimeBackend backend;
        try
        {
            (region, backend) = await deployer.BackendOfAsync(f, ct);
        }
        catch (AtelierException e)
        {
            await RecordAsync(db, f, f.AppliedGeneration, "failed", e.ErrMessage ?? e.Message, ct);
            return false;
        }

        if (!backend.PerReplica && !leadership.IsLeader)
        {
            return false;
        }

        var key = FunctionConfigs.KeyOf(f.Id);
        try
        {
            var seen = await backend.ObserveAsync(region, key, ct);
            if (seen.Phase == FunctionPhase.Ready && f.State == "ready" && f.AppliedGeneration == f.Generation)
            {
                return false;
            }

            if (seen.Phase == FunctionPhase.Deploying)
            {
                // An apply of this generation is under way (an API call's, or the backend's own restart): nothing to add.
                return false;
            }

            await backend.ApplyAsync(region, await deployer.SpecAsync(f, ct: ct), ct);
            foreach (var d in await db.CustomDomains.AsNoTracking().Where(d => d.FunctionId == f.Id).ToListAsync(ct))
            {
                if (SecretSeal.TryOpen(keys, KeyPurpose.RuntimeSecrets, d.PrivateKeyCipher, out var privateKey))
                {
                    await backend.MountDomainAsync(region, key, new DomainSpec(d.Host, d.CertificatePem, privateKey), ct);
                }
            }

            await RecordAsync(db, f, f.Generation, "ready", null, ct);
            LogApplied(logger, f.Id, f.Generation);
            return true;
        }
        catch (RuntimeException e)
        {
            await RecordAsync(db, f, f.AppliedGeneration, "failed", $"{e.Code}: {e.Message}", ct);
            LogFailed(logger, f.Id, e.Code, e.Message);
            return false;
        }
    }

    /// <summary>Conditional on the generation read, so an update made meanwhile is not marked with this pass's outcome.</summary>
    private static Task<int> RecordAsync(AtelierDb db, Function f, long applied, string state, string? reason, CancellationToken ct) =>
        db.Functions.IgnoreQueryFilters().Where(x => x.Id == f.Id && x.Generation == f.Generation)
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.State, state).SetProperty(x => x.StateReason, reason == null ? null : reason.Length > 2000 ? reason.Substring(0, 2000) : reason)
                .SetProperty(x => x.AppliedGeneration, applied), ct);

    [LoggerMessage(3210, LogLevel.Warning, "A reconcile pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception e);

    [LoggerMessage(3211, LogLevel.Information, "Function {FunctionId} applied at generation {Generation}")]
    private static partial void LogApplied(ILogger logger, string functionId, long generation);

    [LoggerMessage(3212, LogLevel.Warning, "Function {FunctionId} could not be applied: {Code} {Message}")]
    private static partial void LogFailed(ILogger logger, string functionId, string code, string message);
}
