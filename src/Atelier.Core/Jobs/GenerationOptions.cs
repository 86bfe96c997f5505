using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Jobs;

/// <summary>
/// Configuration section <c>Atelier:Generation</c>: how large the pictures a request brings (img2img init images and
/// masks, read from their headers) and makes (width × height × images) may be.
/// </summary>
public sealed partial class GenerationOptions : IValidatableObject
{
    public const string SectionName = "Atelier:Generation";

    /// <summary>The widest init image or mask accepted.</summary>
    [Range(1, 65_535)]
    public int MaxInitImageWidth { get; set; } = 4096;

    /// <summary>The tallest init image or mask accepted.</summary>
    [Range(1, 65_535)]
    public int MaxInitImageHeight { get; set; } = 4096;

    /// <summary>The most pixels (width × height) an init image or mask may have.</summary>
    [Range(typeof(long), "1", "9223372036854775807")]
    public long MaxInitImagePixels { get; set; } = 4096L * 4096;

    /// <summary>The most pixels one job may make: width × height × batch_size × n_iter.</summary>
    [Range(typeof(long), "1", "9223372036854775807")]
    public long MaxPixelsPerJob { get; set; } = 2048L * 2048 * 4;

    /// <summary>
    /// <see cref="MaxPixelsPerJob"/> for single agents, by agent name (an agent's workers run one engine, and engines
    /// differ in what they can hold): <c>Atelier:Generation:MaxPixelsPerJobByAgent:default=8388608</c>.
    /// </summary>
    public Dictionary<string, long> MaxPixelsPerJobByAgent { get; set; } = new(StringComparer.Ordinal);

    public long MaxPixelsFor(string agentName) => MaxPixelsPerJobByAgent.TryGetValue(agentName, out var n) ? n : MaxPixelsPerJob;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext) =>
        MaxPixelsPerJobByAgent.Where(a => a.Value < 1)
            .Select(a => new ValidationResult($"{SectionName}:MaxPixelsPerJobByAgent:{a.Key}: must be at least 1."));

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<GenerationOptions>;
}
