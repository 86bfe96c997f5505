namespace Atelier.Data.Entities;

/// <summary>
/// One minute of one usage indicator for one tenant and one combination of its dimensions (absent ones are empty):
/// how many, their sum and, for the durations, a log-scale histogram. Written only by the roller (Core/Usage), read
/// by usage queries, which never read the raw rows.
/// </summary>
public sealed class UsageBucket : ITenantOwned
{
    public required string TenantId { get; set; }
    public required string Indicator { get; set; }
    /// <summary>The start of the minute (UTC).</summary>
    public DateTime Minute { get; set; }
    public string AppId { get; set; } = "";
    public string ModelId { get; set; } = "";
    public string Engine { get; set; } = "";
    /// <summary>The indicator's own dimension: a job's state, an error's code, a webhook attempt's outcome.</summary>
    public string Label { get; set; } = "";
    public long Count { get; set; }
    public double Sum { get; set; }
    /// <summary>For durations: the non-empty bins of a fixed log-scale histogram, <c>bin:count</c> joined by <c>;</c>.</summary>
    public string? Histogram { get; set; }
}

/// <summary>How far a roller has built its rollups: every minute before <see cref="RolledUntil"/> is complete.</summary>
public sealed class UsageMark
{
    public required string Name { get; set; }
    public DateTime RolledUntil { get; set; }
    /// <summary>The replica that wrote it last (for operators).</summary>
    public string? By { get; set; }
    public DateTime UpdatedAt { get; set; }
}
