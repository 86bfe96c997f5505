namespace Atelier.Contracts.Usage;

/// <summary>One usage indicator: what it counts, in which unit, and the dimensions a query may split it by (<c>by</c>).</summary>
public sealed record IndicatorDto(string Name, string Unit, string Description, IReadOnlyList<string> Dimensions);

public sealed record IndicatorList(IReadOnlyList<IndicatorDto> Items);

/// <summary>One point of a series: the start of its step (UTC) and its value; a step with no data is 0.</summary>
public sealed record UsagePointDto(DateTime At, double Value);

/// <summary>
/// One series: <c>total</c> when the query has no <c>by</c>, else the dimension's value; for the percentile indicators
/// (<c>queue_wait</c>, <c>run_time</c>) without <c>by</c> the keys are <c>p50</c>, <c>p90</c>, <c>p99</c>, and with
/// <c>by</c> each value's series carries its p50.
/// </summary>
public sealed record UsageSeriesDto(string Key, IReadOnlyList<UsagePointDto> Points);

/// <summary>
/// A query's answer. <see cref="RolledUpTo"/> is how far the rollups are built: steps at or after it are not counted
/// yet (they read 0 until the next pass of the roller).
/// </summary>
public sealed record UsageQueryResult(string Indicator, string Unit, string Step, DateTime From, DateTime To, IReadOnlyList<UsageSeriesDto> Series,
    DateTime RolledUpTo);

/// <summary>A chart the console draws: an indicator, how it is drawn, what it is split by, its default step.</summary>
public sealed record ChartDefinitionDto(string Id, string Title, string Indicator, string Type, string? By, string Step);

public sealed record ChartList(IReadOnlyList<string> Types, IReadOnlyList<ChartDefinitionDto> Items);

public sealed record ChartDataDto(ChartDefinitionDto Chart, UsageQueryResult Data);

/// <summary>A chart drawn once without being a built-in one: <c>POST /api/v1/usage/charts/preview</c>.</summary>
public sealed record ChartPreviewRequest(string? Type, string? Indicator, string? By, string? Step, string? From, string? To, string? AppId, string? ModelId);
