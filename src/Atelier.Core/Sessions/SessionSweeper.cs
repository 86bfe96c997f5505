using Atelier.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Sessions;

/// <summary>Ends expired sessions (and accounts their time) every <see cref="SessionsOptions.SweepIntervalSeconds"/>.</summary>
public sealed partial class SessionSweeper(IServiceScopeFactory scopes, TimeProvider clock, IOptions<SessionsOptions> options, ILogger<SessionSweeper> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, options.Value.SweepIntervalSeconds)), clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var ended = await SweepAsync(stoppingToken);
                if (ended > 0)
                {
                    LogSwept(logger, ended);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogSweepFailed(logger, e);
            }
        }
    }

    /// <summary>One pass: ends every active session whose expiry has passed. Returns how many it ended.</summary>
    public async Task<int> SweepAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var now = clock.GetUtcNow().UtcDateTime;
        var due = await db.Sessions.IgnoreQueryFilters().AsNoTracking()
            .Where(s => s.State == "active" && s.ExpiredAt <= now)
            .OrderBy(s => s.ExpiredAt).Select(s => s.Id).Take(1000).ToListAsync(ct);
        var ended = 0;
        foreach (var id in due)
        {
            try
            {
                if (await SessionService.EndCoreAsync(db, id, clock, dueOnly: true, ct) is not null)
                {
                    ended++;
                }
            }
            catch (Contracts.Errors.AtelierException e)
            {
                LogEndFailed(logger, id, e.Code.Code);
            }
        }

        return ended;
    }

    [LoggerMessage(2000, LogLevel.Information, "Session sweeper ended {Count} expired sessions")]
    private static partial void LogSwept(ILogger logger, int count);

    [LoggerMessage(2001, LogLevel.Error, "Session sweep failed")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);

    [LoggerMessage(2002, LogLevel.Warning, "Session {SessionId} could not be ended: {Code}")]
    private static partial void LogEndFailed(ILogger logger, string sessionId, string code);
}
