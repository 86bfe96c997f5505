using Atelier.Contracts.Usage;

namespace Atelier.Core.Usage;

/// <summary>How an indicator's value is read from its buckets.</summary>
public enum IndicatorKind
{
    /// <summary>The number of events.</summary>
    Count,
    /// <summary>The sum of the events' amounts (seconds).</summary>
    Sum,
    /// <summary>Percentiles of the events' durations (milliseconds), from the buckets' histograms.</summary>
    Percentile,
}

/// <summary>One indicator: its name, unit, meaning, how its value is read and the dimensions it may be split by.</summary>
public sealed record Indicator(string Name, string Unit, string Description, IndicatorKind Kind, IReadOnlyList<string> Dimensions)
{
    public IndicatorDto ToDto() => new(Name, Unit, Description, Dimensions);
}

/// <summary>The usage indicators and the built-in charts (docs/operations.md, Usage).</summary>
public static class UsageIndicators
{
    public const string Jobs = "jobs";
    public const string Images = "images";
    public const string ComputeSeconds = "compute_seconds";
    public const string SessionSeconds = "session_seconds";
    public const string QueueWait = "queue_wait";
    public const string RunTime = "run_time";
    public const string Errors = "errors";
    public const string WebhookDeliveries = "webhook_deliveries";

    public static IReadOnlyList<Indicator> All { get; } =
    [
        new(Jobs, "count", "Jobs that ended, by the minute they ended, with their final state.", IndicatorKind.Count, ["state", "app", "model", "engine"]),
        new(Images, "count", "Images stored in the library.", IndicatorKind.Count, ["app", "model"]),
        new(ComputeSeconds, "seconds", "Worker time of ended jobs: from the lease of the last attempt to the end.", IndicatorKind.Sum, ["engine", "model", "app"]),
        new(SessionSeconds, "seconds", "Time of the sessions that ended.", IndicatorKind.Sum, ["app"]),
        new(QueueWait, "milliseconds", "From submit to the last attempt's lease, of ended jobs that ran (p50, p90, p99).", IndicatorKind.Percentile, ["app", "model", "engine"]),
        new(RunTime, "milliseconds", "From the last attempt's lease to the end, of ended jobs that ran (p50, p90, p99).", IndicatorKind.Percentile, ["app", "model", "engine"]),
        new(Errors, "count", "Jobs that failed or were aborted, by their error code.", IndicatorKind.Count, ["code"]),
        new(WebhookDeliveries, "count", "Webhook attempts, delivered (a 2xx answer) or failed.", IndicatorKind.Count, ["outcome"]),
    ];

    public static Indicator? Find(string? name) => All.FirstOrDefault(i => string.Equals(i.Name, name, StringComparison.Ordinal));

    public static IReadOnlyList<string> ChartTypes { get; } = ["line", "bar", "stacked", "table"];

    public static IReadOnlyList<ChartDefinitionDto> Charts { get; } =
    [
        new("jobs-by-state", "Jobs by state", Jobs, "stacked", "state", "hour"),
        new("images", "Images", Images, "line", null, "hour"),
        new("compute-seconds-by-engine", "Compute seconds by engine", ComputeSeconds, "bar", "engine", "hour"),
        new("queue-wait", "Queue wait", QueueWait, "line", null, "hour"),
        new("run-time", "Run time", RunTime, "line", null, "hour"),
        new("errors-by-code", "Errors by code", Errors, "table", "code", "day"),
        new("session-seconds", "Session seconds", SessionSeconds, "line", null, "hour"),
        new("webhook-deliveries", "Webhook deliveries", WebhookDeliveries, "stacked", "outcome", "hour"),
    ];
}
