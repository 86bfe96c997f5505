using Atelier.Core.Common;
using Atelier.Core.Coordination;
using Atelier.Core.Sessions;
using Atelier.Contracts.Errors;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Functions;

/// <summary>
/// Stops the studio instances of dedicated sessions once their session has ended or expired: on the leader, every
/// <see cref="SessionsOptions.StudioReapIntervalSeconds"/>, each function of <see cref="FunctionManager.StudioService"/>
/// whose session is over is deleted (its instances stopped, its backend objects removed). A delete the backend refuses
/// is tried again on the next pass.
/// </summary>
public sealed partial class StudioReaper(IServiceScopeFactory scopes, Leadership leadership, TimeProvider clock, IOptions<SessionsOptions> options,
    ILogger<StudioReaper> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.StudioReapIntervalSeconds), clock);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            if (!leadership.IsLeader)
            {
                continue;
            }

            try
            {
                await ReapAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(logger, e);
            }
        }
    }

    /// <summary>
    /// The calling session's dedicated studio: its id, its config's template and instance parameters. Another session's
    /// id is <c>b_session_tokenforbidden</c>; a session on shared compute has no instance (<c>p_common_inputinvalid</c> 409).
    /// </summary>
    public static async Task<(string Session, string TemplateId, string Parameters)> DedicatedAsync(AtelierDb db, RequestContext ctx, string sessionId, CancellationToken ct)
    {
        if (ctx.Caller?.CredentialId != sessionId)
        {
            throw new AtelierException(ErrorCatalog.b_session_tokenforbidden, errCode: ErrCodes.Scope, errMessage: "the credential is not this session's");
        }

        var row = await db.Sessions.AsNoTracking().Where(s => s.Id == sessionId).Select(s => new { s.Id, s.ResourceConfigId }).FirstAsync(ct);
        var config = row.ResourceConfigId is null ? null
            : await db.ResourceConfigs.AsNoTracking().Where(r => r.Id == row.ResourceConfigId).Select(r => new { r.FunctionTemplateId, r.InstanceParametersJson }).FirstOrDefaultAsync(ct);
        return config?.FunctionTemplateId is { } template
            ? (row.Id, template, config.InstanceParametersJson ?? "{}")
            : throw AtelierException.InvalidInput("session", "runs on shared compute: its studio is /studio/{sessionId}, with no instance of its own", 409);
    }

    /// <summary>One pass: deletes the studio functions of sessions that are over; answers how many went.</summary>
    public async Task<int> ReapAsync(CancellationToken ct)
    {
        List<(string TenantId, string Name)> over;
        using (var scope = scopes.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
            var now = clock.GetUtcNow().UtcDateTime;
            var studios = await db.Functions.IgnoreQueryFilters().AsNoTracking()
                .Where(f => db.FunctionServices.IgnoreQueryFilters().Any(s => s.Id == f.ServiceId && s.Name == FunctionManager.StudioService))
                .Select(f => new { f.TenantId, f.Name }).Take(500).ToListAsync(ct);
            var ids = studios.Select(f => FunctionManager.StudioSessionId(f.Name)).ToList();
            var live = (await db.Sessions.IgnoreQueryFilters().AsNoTracking()
                    .Where(s => ids.Contains(s.Id) && s.EndedAt == null && s.ExpiredAt > now).Select(s => s.Id).ToListAsync(ct))
                .ToHashSet(StringComparer.Ordinal);
            over = [.. studios.Where(f => !live.Contains(FunctionManager.StudioSessionId(f.Name))).Select(f => (f.TenantId, f.Name))];
        }

        var stopped = 0;
        foreach (var (tenantId, name) in over)
        {
            using var scope = scopes.CreateScope();
            var ctx = scope.ServiceProvider.GetRequiredService<RequestContext>();
            ctx.TenantId = tenantId;
            ctx.OperatorId = "studio-reaper";
            scope.ServiceProvider.GetRequiredService<AtelierDb>().TenantScope = tenantId;
            try
            {
                await scope.ServiceProvider.GetRequiredService<FunctionManager>().DeleteAsync(FunctionManager.StudioService, name, open: false, ct);
                stopped++;
                LogStopped(logger, name);
            }
            catch (AtelierException e)
            {
                LogStopFailed(logger, name, e.Message);
            }
        }

        return stopped;
    }

    [LoggerMessage(EventId = 6300, Level = LogLevel.Information, Message = "Studio instance {Function} stopped: its session is over")]
    private static partial void LogStopped(ILogger logger, string function);

    [LoggerMessage(EventId = 6301, Level = LogLevel.Warning, Message = "Studio instance {Function} could not be stopped yet: {Reason}")]
    private static partial void LogStopFailed(ILogger logger, string function, string reason);

    [LoggerMessage(EventId = 6302, Level = LogLevel.Error, Message = "Studio reaper pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception e);
}
