using Atelier.Data;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Images;

/// <summary>
/// Deletes images older than their tenant's <c>imageRetentionDays</c>, every <see cref="ImagesOptions.RetentionSweepMinutes"/>,
/// in the leader alone (two replicas would delete the same objects and rows twice).
/// </summary>
public sealed partial class ImageRetentionSweeper(IServiceScopeFactory scopes, TimeProvider clock, IOptions<ImagesOptions> options, Coordination.Leadership leadership,
    ILogger<ImageRetentionSweeper> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMinutes(Math.Max(1, options.Value.RetentionSweepMinutes)), clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (!leadership.IsLeader)
            {
                continue;
            }

            try
            {
                var (deleted, failed) = await SweepAsync(stoppingToken);
                if (deleted + failed > 0)
                {
                    LogSwept(logger, deleted, failed);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e);
            }
        }
    }

    public async Task<(int Deleted, int Failed)> SweepAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var store = scope.ServiceProvider.GetRequiredService<IObjectStore>();
        var now = clock.GetUtcNow().UtcDateTime;
        var tenants = await db.TenantConfigs.IgnoreQueryFilters().AsNoTracking().Select(c => new { c.TenantId, c.ImageRetentionDays }).ToListAsync(ct);
        int deleted = 0, failed = 0;
        foreach (var t in tenants)
        {
            var before = now.AddDays(-Math.Max(1, t.ImageRetentionDays));
            var old = await db.GeneratedImages.IgnoreQueryFilters().AsNoTracking()
                .Where(i => i.TenantId == t.TenantId && i.CreatedAt < before && i.DeleteError == null).Take(1000).ToListAsync(ct);
            var (d, f) = await ImageService.DeleteStoredAsync(db, store, old, ct);
            deleted += d.Count;
            failed += f.Count;
        }

        return (deleted, failed);
    }

    [LoggerMessage(4100, LogLevel.Information, "Image retention: {Deleted} images deleted, {Failed} kept after a storage failure")]
    private static partial void LogSwept(ILogger logger, int deleted, int failed);

    [LoggerMessage(4101, LogLevel.Error, "Image retention sweep failed")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
