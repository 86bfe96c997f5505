using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Functions;

/// <summary>Configuration section <c>Atelier:Functions</c>.</summary>
public sealed partial class FunctionsOptions
{
    public const string SectionName = "Atelier:Functions";

    /// <summary>How often the reconciler compares every function's desired state with its backend.</summary>
    [Range(1, 3600)]
    public int ReconcileIntervalSeconds { get; set; } = 15;

    /// <summary>How often queued async invocations and due timer triggers are looked for.</summary>
    [Range(1, 3600)]
    public int PollIntervalSeconds { get; set; } = 1;

    /// <summary>The largest request body an async invocation keeps (a larger one is refused with 413).</summary>
    [Range(1, 64 << 20)]
    public int AsyncBodyMaxBytes { get; set; } = 6 << 20;

    /// <summary>The largest response an async invocation keeps as its result.</summary>
    [Range(1, 256 << 20)]
    public int AsyncResultMaxBytes { get; set; } = 32 << 20;

    /// <summary>How long a local instance may take to answer its health path at start.</summary>
    [Range(1, 3600)]
    public int LocalStartTimeoutSeconds { get; set; } = 120;

    /// <summary>How long a local instance gets between SIGTERM and SIGKILL.</summary>
    [Range(0, 600)]
    public int LocalStopGraceSeconds { get; set; } = 10;

    /// <summary>How often local instances are checked against their function's idle window (an idle one stops within this after its window).</summary>
    [Range(1, 3600)]
    public int LocalIdleCheckSeconds { get; set; } = 1;

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<FunctionsOptions>;
}
