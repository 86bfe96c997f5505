namespace Atelier.Core.Images;

/// <summary>Configuration section <c>Atelier:Images</c>.</summary>
public sealed class ImagesOptions
{
    public const string Section = "Atelier:Images";

    /// <summary>The longest any signed URL may be configured to work: a week.</summary>
    public const int MaxUrlLifetimeSeconds = 7 * 86400;

    /// <summary>How long a signed image URL works (at most <see cref="MaxUrlLifetimeSeconds"/>; more stops the start).</summary>
    public int UrlLifetimeSeconds { get; set; } = 3600;

    /// <summary>How often images past their tenant's retention are deleted.</summary>
    public int RetentionSweepMinutes { get; set; } = 60;

    /// <summary>The most ids one delete call takes.</summary>
    public int MaxDeleteBatch { get; set; } = 100;
}
