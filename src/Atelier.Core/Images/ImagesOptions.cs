using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Images;

/// <summary>Configuration section <c>Atelier:Images</c>.</summary>
public sealed partial class ImagesOptions
{
    public const string SectionName = "Atelier:Images";

    /// <summary>The longest any signed URL may be configured to work: a week.</summary>
    public const int MaxUrlLifetimeSeconds = 7 * 86400;

    /// <summary>How long a signed image URL works (at most <see cref="MaxUrlLifetimeSeconds"/>; more stops the start).</summary>
    [Range(1, MaxUrlLifetimeSeconds)]
    public int UrlLifetimeSeconds { get; set; } = 3600;

    /// <summary>How often images past their tenant's retention are deleted.</summary>
    [Range(1, 7 * 24 * 60)]
    public int RetentionSweepMinutes { get; set; } = 60;

    /// <summary>The most ids one delete call takes.</summary>
    [Range(1, 10_000)]
    public int MaxDeleteBatch { get; set; } = 100;

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<ImagesOptions>;
}
