using Atelier.Contracts.Jobs;
using Atelier.Core.Models;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Usage;

/// <summary>
/// Builds the usage rollups (<c>usage_rollups</c>): one pass reads what ended in the minutes since the stored watermark
/// (jobs by their end, sessions by their end, images by their creation, webhook attempts by their time), up to the
/// last minute that ended <see cref="UsageOptions.SettleSeconds"/> ago, and writes those minutes' buckets and the new
/// watermark in one transaction. The watermark moves only from the value the pass read (a conditional update), so two
/// replicas that both believe they lead for a moment cannot count a minute twice: the second commit finds the mark
/// moved and rolls back. Run by the leader (<c>UsageRollerHost</c>); buckets past <see cref="UsageOptions.RetentionDays"/>
/// are deleted.
/// </summary>
public sealed class UsageRoller(IServiceScopeFactory scopes, TimeProvider clock, IOptions<UsageOptions> options)
{
    /// <summary>The name of the watermark row.</summary>
    public const string MarkName = "minutes";

    /// <summary>One pass. True when more minutes are ready to roll (the caller goes on at once).</summary>
    public async Task<bool> RollAsync(string replica, CancellationToken ct)
    {
        var o = options.Value;
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var now = clock.GetUtcNow().UtcDateTime;
        var ready = Minutes.Floor(now - TimeSpan.FromSeconds(o.SettleSeconds));
        var cutoff = Minutes.Floor(now - TimeSpan.FromDays(o.RetentionDays));
        var mark = await db.UsageMarks.AsNoTracking().FirstOrDefaultAsync(m => m.Name == MarkName, ct);
        if (mark is null)
        {
            var first = await EarliestAsync(db, cutoff, ct) ?? ready;
            mark = new UsageMark { Name = MarkName, RolledUntil = Minutes.Floor(first < cutoff ? cutoff : first), By = replica, UpdatedAt = now };
            db.UsageMarks.Add(mark);
            await db.SaveChangesAsync(ct);
            db.ChangeTracker.Clear();
        }

        var from = mark.RolledUntil < cutoff ? cutoff : mark.RolledUntil;
        if (from >= ready)
        {
            return false;
        }

        var to = from.AddMinutes(o.MaxMinutesPerPass) < ready ? from.AddMinutes(o.MaxMinutesPerPass) : ready;
        var buckets = new Dictionary<BucketKey, Acc>();
        await JobsAsync(db, from, to, buckets, ct);
        await SessionsAsync(db, from, to, buckets, ct);
        await ImagesAsync(db, from, to, buckets, ct);
        await WebhooksAsync(db, from, to, buckets, ct);

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        foreach (var tenant in buckets.GroupBy(b => b.Key.TenantId))
        {
            db.TenantScope = tenant.Key;
            db.UsageBuckets.AddRange(tenant.Select(b => b.Value.ToRow(b.Key)));
            await db.SaveChangesAsync(ct);
            db.ChangeTracker.Clear();
        }

        db.TenantScope = null;
        var moved = await db.UsageMarks.Where(m => m.Name == MarkName && m.RolledUntil == mark.RolledUntil)
            .ExecuteUpdateAsync(u => u.SetProperty(m => m.RolledUntil, to).SetProperty(m => m.By, replica).SetProperty(m => m.UpdatedAt, now), ct);
        if (moved != 1)
        {
            await tx.RollbackAsync(ct);
            return false;
        }

        await tx.CommitAsync(ct);
        await db.UsageBuckets.IgnoreQueryFilters().Where(b => b.Minute < cutoff).ExecuteDeleteAsync(ct);
        return to < ready;
    }

    /// <summary>How far the rollups are built (null before the first pass).</summary>
    public static async Task<DateTime?> RolledUntilAsync(AtelierDb db, CancellationToken ct) =>
        await db.UsageMarks.AsNoTracking().Where(m => m.Name == MarkName).Select(m => (DateTime?)m.RolledUntil).FirstOrDefaultAsync(ct);

    /// <summary>The first minute with anything to roll within the retention, so a new rollup starts where the data does.</summary>
    private static async Task<DateTime?> EarliestAsync(AtelierDb db, DateTime cutoff, CancellationToken ct)
    {
        DateTime?[] firsts =
        [
            await db.Jobs.IgnoreQueryFilters().Where(j => j.FinishedAt >= cutoff).MinAsync(j => j.FinishedAt, ct),
            await db.Sessions.IgnoreQueryFilters().Where(s => s.EndedAt >= cutoff).MinAsync(s => s.EndedAt, ct),
            await db.GeneratedImages.IgnoreQueryFilters().Where(i => i.CreatedAt >= cutoff).MinAsync(i => (DateTime?)i.CreatedAt, ct),
            await db.WebhookAttempts.IgnoreQueryFilters().Where(a => a.At >= cutoff).MinAsync(a => (DateTime?)a.At, ct),
        ];
        return firsts.Where(f => f.HasValue).Min();
    }

    private static async Task JobsAsync(AtelierDb db, DateTime from, DateTime to, Dictionary<BucketKey, Acc> buckets, CancellationToken ct)
    {
        var jobs = await db.Jobs.IgnoreQueryFilters().AsNoTracking().Where(j => j.FinishedAt >= from && j.FinishedAt < to)
            .Select(j => new { j.TenantId, j.AppId, j.ModelJson, j.State, j.ErrorCode, j.CreatedAt, j.StartedAt, FinishedAt = j.FinishedAt!.Value, j.LeaseKeyId })
            .ToListAsync(ct);
        if (jobs.Count == 0)
        {
            return;
        }

        // The engine of a job is its last lease's worker's: the workers registered with that key (the newest says).
        var keys = jobs.Where(j => j.LeaseKeyId != null).Select(j => j.LeaseKeyId!).Distinct().ToList();
        var engines = (await db.Workers.AsNoTracking().Where(w => keys.Contains(w.KeyId)).Select(w => new { w.KeyId, w.Engine, w.RegisteredAt }).ToListAsync(ct))
            .GroupBy(w => w.KeyId).ToDictionary(g => g.Key, g => g.OrderByDescending(w => w.RegisteredAt).First().Engine, StringComparer.Ordinal);
        foreach (var j in jobs)
        {
            var minute = Minutes.Floor(j.FinishedAt);
            var app = j.AppId ?? "";
            var model = ModelIdOf(j.ModelJson);
            var engine = j.LeaseKeyId is not null && engines.TryGetValue(j.LeaseKeyId, out var e) ? e : "";
            Add(buckets, new(j.TenantId, UsageIndicators.Jobs, minute, app, model, engine, j.State)).Count++;
            if (j.State is JobStates.Failed or JobStates.Aborted)
            {
                Add(buckets, new(j.TenantId, UsageIndicators.Errors, minute, app, "", "", j.ErrorCode ?? "unknown")).Count++;
            }

            if (j.StartedAt is { } started)
            {
                var run = Math.Max(0, (j.FinishedAt - started).TotalMilliseconds);
                var wait = Math.Max(0, (started - j.CreatedAt).TotalMilliseconds);
                var compute = Add(buckets, new(j.TenantId, UsageIndicators.ComputeSeconds, minute, app, model, engine, ""));
                compute.Count++;
                compute.Sum += run / 1000;
                Add(buckets, new(j.TenantId, UsageIndicators.QueueWait, minute, app, model, engine, "")).Sample(wait);
                Add(buckets, new(j.TenantId, UsageIndicators.RunTime, minute, app, model, engine, "")).Sample(run);
            }
        }
    }

    private static async Task SessionsAsync(AtelierDb db, DateTime from, DateTime to, Dictionary<BucketKey, Acc> buckets, CancellationToken ct)
    {
        var sessions = await db.Sessions.IgnoreQueryFilters().AsNoTracking().Where(s => s.EndedAt >= from && s.EndedAt < to)
            .Select(s => new { s.TenantId, s.AppId, EndedAt = s.EndedAt!.Value, s.CreatedAt, s.DurationSeconds }).ToListAsync(ct);
        foreach (var s in sessions)
        {
            var acc = Add(buckets, new(s.TenantId, UsageIndicators.SessionSeconds, Minutes.Floor(s.EndedAt), s.AppId, "", "", ""));
            acc.Count++;
            acc.Sum += s.DurationSeconds ?? Math.Max(0, (long)(s.EndedAt - s.CreatedAt).TotalSeconds);
        }
    }

    private static async Task ImagesAsync(AtelierDb db, DateTime from, DateTime to, Dictionary<BucketKey, Acc> buckets, CancellationToken ct)
    {
        var images = await db.GeneratedImages.IgnoreQueryFilters().AsNoTracking().Where(i => i.CreatedAt >= from && i.CreatedAt < to)
            .Select(i => new
            {
                i.TenantId, i.AppId, i.CreatedAt,
                ModelId = db.ModelVersions.IgnoreQueryFilters().Where(v => v.Id == i.ModelVersionId).Select(v => v.ModelId).FirstOrDefault(),
            }).ToListAsync(ct);
        foreach (var i in images)
        {
            Add(buckets, new(i.TenantId, UsageIndicators.Images, Minutes.Floor(i.CreatedAt), i.AppId ?? "", i.ModelId ?? "", "", "")).Count++;
        }
    }

    private static async Task WebhooksAsync(AtelierDb db, DateTime from, DateTime to, Dictionary<BucketKey, Acc> buckets, CancellationToken ct)
    {
        var attempts = await db.WebhookAttempts.IgnoreQueryFilters().AsNoTracking().Where(a => a.At >= from && a.At < to)
            .Select(a => new
            {
                a.TenantId, a.At, a.Status,
                AppId = db.WebhookDeliveries.IgnoreQueryFilters().Where(d => d.Id == a.DeliveryId).Select(d => d.AppId).FirstOrDefault(),
            }).ToListAsync(ct);
        foreach (var a in attempts)
        {
            var outcome = a.Status is >= 200 and < 300 ? "delivered" : "failed";
            Add(buckets, new(a.TenantId, UsageIndicators.WebhookDeliveries, Minutes.Floor(a.At), a.AppId ?? "", "", "", outcome)).Count++;
        }
    }

    private static string ModelIdOf(string? modelJson)
    {
        try
        {
            return ResolvedModel.FromJson(modelJson)?.ModelId ?? "";
        }
        catch (System.Text.Json.JsonException)
        {
            return "";
        }
    }

    private static Acc Add(Dictionary<BucketKey, Acc> buckets, BucketKey key)
    {
        if (!buckets.TryGetValue(key, out var acc))
        {
            buckets[key] = acc = new Acc();
        }

        return acc;
    }

    private readonly record struct BucketKey(string TenantId, string Indicator, DateTime Minute, string AppId, string ModelId, string Engine, string Label);

    private sealed class Acc
    {
        public long Count;
        public double Sum;
        public SortedDictionary<int, long>? Bins;

        public void Sample(double ms)
        {
            Count++;
            Sum += ms;
            LogHistogram.Add(Bins ??= [], ms);
        }

        public UsageBucket ToRow(BucketKey k) => new()
        {
            TenantId = k.TenantId, Indicator = k.Indicator, Minute = k.Minute, AppId = Cut(k.AppId, 64), ModelId = Cut(k.ModelId, 64), Engine = Cut(k.Engine, 32),
            Label = Cut(k.Label, 64), Count = Count, Sum = Sum, Histogram = Bins is null ? null : LogHistogram.Format(Bins),
        };

        private static string Cut(string s, int max) => s.Length <= max ? s : s[..max];
    }
}

/// <summary>Minute arithmetic on UTC times.</summary>
public static class Minutes
{
    public static DateTime Floor(DateTime t) => new(t.Ticks - (t.Ticks % TimeSpan.TicksPerMinute), DateTimeKind.Utc);
}
