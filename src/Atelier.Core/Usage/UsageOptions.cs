using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Usage;

/// <summary>Configuration section <c>Atelier:Usage</c>: the usage roller and the limits of a usage query.</summary>
public sealed partial class UsageOptions
{
    public const string SectionName = "Atelier:Usage";

    /// <summary>How often the leader rolls the minutes that have ended into the rollups.</summary>
    [Range(1, 3600)]
    public int RollIntervalSeconds { get; set; } = 15;

    /// <summary>How long after a minute ends it is rolled: rows written late (a slow commit, a replica's clock a little behind) still count.</summary>
    [Range(0, 600)]
    public int SettleSeconds { get; set; } = 5;

    /// <summary>How long the minute rollups are kept; a query reaching further back is refused.</summary>
    [Range(1, 3660)]
    public int RetentionDays { get; set; } = 90;

    /// <summary>The most minutes one pass rolls (a replica catching up goes on at once with the next pass).</summary>
    [Range(1, 7 * 24 * 60)]
    public int MaxMinutesPerPass { get; set; } = 60;

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<UsageOptions>;
}
