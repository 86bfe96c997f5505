using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Sessions;

/// <summary>What one sweep did: sessions ended, and sessions that could not be ended (marked, reported once, skipped from then on).</summary>
public sealed record SweepResult(int Ended, int Failed);

/// <summary>
/// Ends expired sessions (and accounts their time) every <see cref="SessionsOptions.SweepIntervalSeconds"/>. It goes
/// round the tenants, oldest expiry first within each, <see cref="SessionsOptions.SweepBatchSize"/> at a time, so one
/// tenant's backlog never holds up another's; a session whose end fails is marked (<see cref="Session.EndError"/>),
/// logged once and skipped by later sweeps, so it is never retried ahead of the others.
/// </summary>
public sealed partial class SessionSweeper(IServiceScopeFactory scopes, TimeProvider clock, IOptions<SessionsOptions> options, ILogger<SessionSweeper> logger)
    : BackgroundService
{
    private const int MaxEndErrorLength = 1000;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, options.Value.SweepIntervalSeconds)), clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var result = await SweepAsync(stoppingToken);
                if (result.Ended + result.Failed > 0)
                {
                    LogSwept(logger, result.Ended, result.Failed);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogSweepFailed(logger, e);
            }
        }
    }

    /// <summary>One pass: ends every active session whose expiry had passed when it began, tenant by tenant in bounded batches.</summary>
    public async Task<SweepResult> SweepAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var now = clock.GetUtcNow().UtcDateTime;
        var batch = Math.Max(1, options.Value.SweepBatchSize);
        var tenants = await Due(db, now).Select(s => s.TenantId).Distinct().ToListAsync(ct);
        int ended = 0, failed = 0;
        while (tenants.Count > 0)
        {
            var more = new List<string>();
            foreach (var tenant in tenants)
            {
                var ids = await Due(db, now).Where(s => s.TenantId == tenant).OrderBy(s => s.ExpiredAt).ThenBy(s => s.Id)
                    .Select(s => s.Id).Take(batch).ToListAsync(ct);
                foreach (var id in ids)
                {
                    try
                    {
                        if (await SessionService.EndCoreAsync(db, id, clock, dueOnly: true, ct) is not null)
                        {
                            ended++;
                        }
                    }
                    catch (Exception e) when (e is not OperationCanceledException && !IsTransient(e))
                    {
                        // Every session of the batch leaves the due set (ended or marked), so the rounds always end.
                        var (code, message) = e is Contracts.Errors.AtelierException a
                            ? (a.Code.Code, a.ErrMessage ?? a.Message)
                            : DbErrors.Describe(e);
                        var endError = $"{code}: {message}";
                        endError = endError.Length > MaxEndErrorLength ? endError[..MaxEndErrorLength] : endError;
                        await db.Sessions.IgnoreQueryFilters().Where(s => s.Id == id && s.State == "active")
                            .ExecuteUpdateAsync(u => u.SetProperty(s => s.EndError, endError), ct);
                        LogEndFailed(logger, id, tenant, code);
                        failed++;
                    }
                }

                if (ids.Count == batch)
                {
                    more.Add(tenant);
                }
            }

            tenants = more;
        }

        return new SweepResult(ended, failed);
    }

    /// <summary>
    /// A failure of the database as a whole (busy, connection lost, deadlock) says nothing about the session: it ends
    /// this sweep (logged) and the next one tries again, instead of marking sessions that nothing is wrong with.
    /// </summary>
    private static bool IsTransient(Exception e)
    {
        for (var cur = e; cur is not null; cur = cur.InnerException)
        {
            // SQLite's busy and locked are not flagged transient by its provider; PostgreSQL's connection, deadlock and
            // serialization failures are.
            if (cur is System.Data.Common.DbException { IsTransient: true } or Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 5 or 6 })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Active sessions past their expiry that no earlier sweep failed to end.</summary>
    private static IQueryable<Session> Due(AtelierDb db, DateTime now) =>
        db.Sessions.IgnoreQueryFilters().AsNoTracking().Where(s => s.State == "active" && s.ExpiredAt <= now && s.EndError == null);

    [LoggerMessage(2000, LogLevel.Information, "Session sweeper ended {Count} expired sessions; {Failed} could not be ended and were marked")]
    private static partial void LogSwept(ILogger logger, int count, int failed);

    [LoggerMessage(2001, LogLevel.Error, "Session sweep failed")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);

    [LoggerMessage(2002, LogLevel.Warning, "Session {SessionId} of tenant {TenantId} could not be ended ({Code}); it is marked and left to an explicit end")]
    private static partial void LogEndFailed(ILogger logger, string sessionId, string tenantId, string code);
}
