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

    /// <summary>The local worker's <c>--model-cache-bytes</c>: its model cache (in <c>&lt;DataDirectory&gt;/model-cache</c>) holds at most this much; 0 fetches no models.</summary>
    [Range(0, long.MaxValue)]
    public long LocalWorkerModelCacheBytes { get; set; } = 20L << 30;

    /// <summary>
    /// The local worker's <c>--device</c> for the built-in engine: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c> (CUDA needs the GPU
    /// build). The local worker always gets <c>--device-fallback</c>: where CUDA cannot start it runs on the CPU and says so.
    /// </summary>
    [Required]
    [RegularExpression("^(cpu|cuda|cuda:[0-9]{1,2})$", ErrorMessage = "Atelier:Embedded:LocalWorkerDevice must be cpu, cuda or cuda:N")]
    public string LocalWorkerDevice { get; set; } = "cpu";

    /// <summary>The command that starts <c>atelier</c> (default: this process's own executable).</summary>
    public string? LocalWorkerCommand { get; set; }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<EmbeddedOptions>;
}
