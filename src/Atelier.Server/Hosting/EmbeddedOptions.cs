using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Hosting;

/// <summary>Configuration section <c>Atelier:Embedded</c>: what a bare <c>atelier serve</c> sets up so that one curl gives an image.</summary>
public sealed partial class EmbeddedOptions
{
    public const string SectionName = "Atelier:Embedded";

    /// <summary>On first start, create a "demo" tenant with an API token (printed once) whose checkpoint is the demo model.</summary>
    public bool DemoTenant { get; set; }

    /// <summary>Start one worker process beside the server (and restart it if it dies).</summary>
    public bool LocalWorker { get; set; }

    /// <summary>The local worker's <c>--engine</c>.</summary>
    [Required]
    public string LocalWorkerEngine { get; set; } = "builtin";

    /// <summary>The local worker's <c>--slots</c>.</summary>
    [Range(1, 64)]
    public int LocalWorkerSlots { get; set; } = 1;

    /// <summary>The command that starts <c>atelier</c> (default: this process's own executable).</summary>
    public string? LocalWorkerCommand { get; set; }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<EmbeddedOptions>;
}
