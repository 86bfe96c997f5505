using System.Globalization;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Identity;
using Atelier.Contracts.Usage;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Usage;

/// <summary>A usage query as the API takes it (raw strings: every problem is reported with its own code).</summary>
public sealed record UsageQuery(string? Indicator, string? From, string? To, string? Step, string? By, string? AppId, string? ModelId);

/// <summary>
/// Answers usage queries from the rollups only (never the raw rows): the caller's tenant (a tenant admin), the caller's
/// app within it (an app token), or every tenant (the platform admin naming none). Hour and day steps are summed from
/// the minute buckets; a step with no data is 0.
/// </summary>
public sealed class UsageService(AtelierDb db, RequestContext ctx, TimeProvider clock, IOptions<UsageOptions> options)
{
    /// <summary>The most points one series may have: a week of minutes.</summary>
    public const int MaxPoints = 7 * 24 * 60;

    /// <summary>The most series one answer carries; the rest of an additive indicator is summed into <c>other</c>.</summary>
    public const int MaxSeries = 50;

    private static readonly Dictionary<string, TimeSpan> Steps = new(StringComparer.Ordinal)
    {
        ["minute"] = TimeSpan.FromMinutes(1), ["hour"] = TimeSpan.FromHours(1), ["day"] = TimeSpan.FromDays(1),
    };

    public static IndicatorList Indicators() => new([.. UsageIndicators.All.Select(i => i.ToDto())]);

    public static ChartList Charts(PageRequest page) => new(UsageIndicators.ChartTypes, [.. UsageIndicators.Charts.Skip(page.Skip).Take(page.PageSize)]);

    public async Task<ChartDataDto> ChartAsync(string chartId, string? from, string? to, string? step, CancellationToken ct)
    {
        var chart = UsageIndicators.Charts.FirstOrDefault(c => string.Equals(c.Id, chartId, StringComparison.Ordinal))
            ?? throw new AtelierException(ErrorCatalog.b_query_charttypenotexist, status: 404, errCode: ErrCodes.ChartNotFound, errMessage: $"no chart {chartId}");
        var data = await QueryAsync(new UsageQuery(chart.Indicator, from, to, step ?? chart.Step, chart.By, null, null), ct);
        return new ChartDataDto(chart, data);
    }

    public async Task<ChartDataDto> PreviewAsync(ChartPreviewRequest? body, CancellationToken ct)
    {
        if (body is null)
        {
            throw AtelierException.InvalidInput("body", "a chart (type, indicator) is required");
        }

        if (!UsageIndicators.ChartTypes.Contains(body.Type ?? "", StringComparer.Ordinal))
        {
            throw new AtelierException(ErrorCatalog.b_query_charttypenotexist, errCode: ErrCodes.ChartType,
                errMessage: $"type {body.Type}: one of {string.Join(", ", UsageIndicators.ChartTypes)}");
        }

        var indicator = Indicator(body.Indicator);
        var step = body.Step ?? "hour";
        var chart = new ChartDefinitionDto("preview", indicator.Name, indicator.Name, body.Type!, body.By, step);
        return new ChartDataDto(chart, await QueryAsync(new UsageQuery(indicator.Name, body.From, body.To, step, body.By, body.AppId, body.ModelId), ct));
    }

    public async Task<UsageQueryResult> QueryAsync(UsageQuery q, CancellationToken ct)
    {
        var indicator = Indicator(q.Indicator);
        var stepName = q.Step ?? "hour";
        if (!Steps.TryGetValue(stepName, out var step))
        {
            throw QueryError(ErrCodes.StepUnknown, $"step {stepName}: one of minute, hour, day");
        }

        var by = string.IsNullOrEmpty(q.By) ? null : q.By;
        if (by is not null && !indicator.Dimensions.Contains(by, StringComparer.Ordinal))
        {
            throw QueryError(ErrCodes.DimensionUnknown, $"by {by}: {indicator.Name} is split by {string.Join(", ", indicator.Dimensions)}");
        }

        var now = clock.GetUtcNow().UtcDateTime;
        var to = Align(Time(q.To, "to") ?? now, step, up: true);
        var from = Align(Time(q.From, "from") ?? now - TimeSpan.FromDays(1), step, up: false);
        if (from >= to)
        {
            throw QueryError(ErrCodes.RangeReversed, $"from {from:O} is not before to {to:O}");
        }

        var points = (to - from).Ticks / step.Ticks;
        if (points > MaxPoints)
        {
            throw QueryError(ErrCodes.TooManyPoints, $"{points} {stepName}s from {from:O} to {to:O}: at most {MaxPoints} points; take a longer step");
        }

        var cutoff = Minutes.Floor(now - TimeSpan.FromDays(options.Value.RetentionDays));
        if (from < Align(cutoff, step, up: false))
        {
            throw QueryError(ErrCodes.PastRetention, $"from {from:O} is before the rollups' retention ({options.Value.RetentionDays} days: {cutoff:O})");
        }

        var rolled = await UsageRoller.RolledUntilAsync(db, ct);
        if (rolled is null || from >= rolled)
        {
            throw QueryError(ErrCodes.RollupNotBuilt, rolled is null ? "the rollups are not built yet" : $"the rollups are built up to {rolled:O}; from {from:O} is after that");
        }

        var buckets = Scoped(q).Where(b => b.Indicator == indicator.Name && b.Minute >= from && b.Minute < to);
        var series = indicator.Kind == IndicatorKind.Percentile
            ? await PercentilesAsync(buckets, by, from, step, (int)points, ct)
            : await TotalsAsync(buckets, by, indicator.Kind, from, step, (int)points, ct);
        return new UsageQueryResult(indicator.Name, indicator.Unit, stepName, from, to, series, rolled.Value);
    }

    /// <summary>The caller's rows: an app token's app only; the platform admin naming no tenant sees them all.</summary>
    private IQueryable<UsageBucket> Scoped(UsageQuery q)
    {
        var caller = ctx.Caller!;
        var appId = q.AppId;
        if (caller.Kind == CallerKind.Token && !caller.Has(TokenScope.Admin))
        {
            if (appId is not null && !string.Equals(appId, caller.AppId, StringComparison.Ordinal))
            {
                throw new AtelierException(ErrorCatalog.p_token_invalidappid, errCode: ErrCodes.AppMismatch, errMessage: appId);
            }

            appId = caller.AppId ?? "";
        }

        var rows = caller.IsPlatformAdmin && ctx.TenantId is null ? db.UsageBuckets.IgnoreQueryFilters() : db.UsageBuckets;
        rows = rows.AsNoTracking();
        if (!string.IsNullOrEmpty(appId))
        {
            rows = rows.Where(b => b.AppId == appId);
        }

        if (!string.IsNullOrEmpty(q.ModelId))
        {
            rows = rows.Where(b => b.ModelId == q.ModelId);
        }

        return rows;
    }

    private static async Task<IReadOnlyList<UsageSeriesDto>> TotalsAsync(IQueryable<UsageBucket> buckets, string? by, IndicatorKind kind, DateTime from,
        TimeSpan step, int points, CancellationToken ct)
    {
        var rows = await Grouped(buckets, by).ToListAsync(ct);
        var series = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var r in rows)
        {
            var key = by is null ? "total" : KeyOf(r.Key);
            if (!series.TryGetValue(key, out var values))
            {
                series[key] = values = new double[points];
            }

            values[(int)((r.Minute - from).Ticks / step.Ticks)] += kind == IndicatorKind.Sum ? r.Sum : r.Count;
        }

        if (by is null && series.Count == 0)
        {
            series["total"] = new double[points];
        }

        var ordered = series.OrderByDescending(s => s.Value.Sum()).ThenBy(s => s.Key, StringComparer.Ordinal).ToList();
        if (ordered.Count > MaxSeries)
        {
            var other = new double[points];
            foreach (var (_, values) in ordered.Skip(MaxSeries - 1))
            {
                for (var i = 0; i < points; i++)
                {
                    other[i] += values[i];
                }
            }

            ordered = [.. ordered.Take(MaxSeries - 1), new("other", other)];
        }

        return [.. ordered.Select(s => new UsageSeriesDto(s.Key, Points(from, step, s.Value)))];
    }

    private static async Task<IReadOnlyList<UsageSeriesDto>> PercentilesAsync(IQueryable<UsageBucket> buckets, string? by, DateTime from, TimeSpan step,
        int points, CancellationToken ct)
    {
        var rows = await (by switch
        {
            "app" => buckets.Select(b => new Sampled { Minute = b.Minute, Key = b.AppId, Histogram = b.Histogram }),
            "model" => buckets.Select(b => new Sampled { Minute = b.Minute, Key = b.ModelId, Histogram = b.Histogram }),
            "engine" => buckets.Select(b => new Sampled { Minute = b.Minute, Key = b.Engine, Histogram = b.Histogram }),
            _ => buckets.Select(b => new Sampled { Minute = b.Minute, Key = "", Histogram = b.Histogram }),
        }).ToListAsync(ct);
        var merged = new Dictionary<string, SortedDictionary<int, long>[]>(StringComparer.Ordinal);
        foreach (var r in rows)
        {
            var key = by is null ? "" : KeyOf(r.Key);
            if (!merged.TryGetValue(key, out var bins))
            {
                merged[key] = bins = new SortedDictionary<int, long>[points];
            }

            LogHistogram.Merge(bins[(int)((r.Minute - from).Ticks / step.Ticks)] ??= [], r.Histogram);
        }

        double[] Read(SortedDictionary<int, long>[]? bins, double q) =>
            [.. Enumerable.Range(0, points).Select(i => bins?[i] is { } b ? LogHistogram.Percentile(b, q) : 0)];

        if (by is null)
        {
            var all = merged.GetValueOrDefault("");
            return [new("p50", Points(from, step, Read(all, 0.5))), new("p90", Points(from, step, Read(all, 0.9))), new("p99", Points(from, step, Read(all, 0.99)))];
        }

        return [.. merged.OrderByDescending(m => m.Value.Sum(b => b?.Values.Sum() ?? 0)).ThenBy(m => m.Key, StringComparer.Ordinal).Take(MaxSeries)
            .Select(m => new UsageSeriesDto(m.Key, Points(from, step, Read(m.Value, 0.5))))];
    }

    /// <summary>The minute buckets summed per minute (and dimension value) by the database.</summary>
    private static IQueryable<Total> Grouped(IQueryable<UsageBucket> q, string? by) => by switch
    {
        "app" => q.GroupBy(b => new { b.Minute, b.AppId }).Select(g => new Total { Minute = g.Key.Minute, Key = g.Key.AppId, Count = g.Sum(b => b.Count), Sum = g.Sum(b => b.Sum) }),
        "model" => q.GroupBy(b => new { b.Minute, b.ModelId }).Select(g => new Total { Minute = g.Key.Minute, Key = g.Key.ModelId, Count = g.Sum(b => b.Count), Sum = g.Sum(b => b.Sum) }),
        "engine" => q.GroupBy(b => new { b.Minute, b.Engine }).Select(g => new Total { Minute = g.Key.Minute, Key = g.Key.Engine, Count = g.Sum(b => b.Count), Sum = g.Sum(b => b.Sum) }),
        null => q.GroupBy(b => b.Minute).Select(g => new Total { Minute = g.Key, Key = "", Count = g.Sum(b => b.Count), Sum = g.Sum(b => b.Sum) }),
        // state, code, outcome: the indicator's own label.
        _ => q.GroupBy(b => new { b.Minute, b.Label }).Select(g => new Total { Minute = g.Key.Minute, Key = g.Key.Label, Count = g.Sum(b => b.Count), Sum = g.Sum(b => b.Sum) }),
    };

    private static IReadOnlyList<UsagePointDto> Points(DateTime from, TimeSpan step, double[] values) =>
        [.. values.Select((v, i) => new UsagePointDto(from + (step * i), Math.Round(v, 3)))];

    /// <summary>A dimension value that was not known (a job that never ran has no engine) reads <c>unknown</c>.</summary>
    private static string KeyOf(string value) => value.Length == 0 ? "unknown" : value;

    private static Indicator Indicator(string? name) => UsageIndicators.Find(name)
        ?? throw new AtelierException(ErrorCatalog.b_query_indicatortypenotexist, errCode: ErrCodes.IndicatorUnknown,
            errMessage: $"indicator {name}: one of {string.Join(", ", UsageIndicators.All.Select(i => i.Name))}");

    private static AtelierException QueryError(string errCode, string message) =>
        new(ErrorCatalog.b_query_indicatorerror, errCode: errCode, errMessage: message);

    private static DateTime? Time(string? value, string field)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        if (!DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            || t.Year < 2000 || t.Year > 9000)
        {
            throw AtelierException.InvalidInput(field, "an ISO 8601 time, such as 2026-11-28T00:00:00Z");
        }

        return t.UtcDateTime;
    }

    private static DateTime Align(DateTime t, TimeSpan step, bool up)
    {
        var down = t.Ticks - (t.Ticks % step.Ticks);
        return new DateTime(up && down != t.Ticks ? down + step.Ticks : down, DateTimeKind.Utc);
    }

    private sealed class Sampled
    {
        public DateTime Minute { get; init; }
        public string Key { get; init; } = "";
        public string? Histogram { get; init; }
    }

    private sealed class Total
    {
        public DateTime Minute { get; init; }
        public string Key { get; init; } = "";
        public long Count { get; init; }
        public double Sum { get; init; }
    }
}
