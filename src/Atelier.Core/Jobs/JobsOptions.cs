using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Jobs;

/// <summary>Configuration section <c>Atelier:Jobs</c>.</summary>
public sealed partial class JobsOptions
{
    public const string SectionName = "Atelier:Jobs";

    /// <summary>How long a lease lasts without a heartbeat.</summary>
    [Range(1, 3600)]
    public int LeaseSeconds { get; set; } = 30;

    /// <summary>How often expired leases are looked for.</summary>
    [Range(1, 3600)]
    public int RescueIntervalSeconds { get; set; } = 5;

    /// <summary>The longest a worker's lease request waits for a job.</summary>
    [Range(0, 300)]
    public int MaxLeaseWaitSeconds { get; set; } = 30;

    /// <summary>A job queued longer than this goes to any free slot, whatever model the slot has loaded.</summary>
    [Range(0, 86400)]
    public int StarvationSeconds { get; set; } = 30;

    /// <summary>How long a running job may take to stop after a cancellation before it is aborted.</summary>
    [Range(0, 3600)]
    public int CancelGraceSeconds { get; set; } = 15;

    /// <summary>How long a finished job's result stays readable.</summary>
    [Range(1, 24 * 365)]
    public int ResultRetentionHours { get; set; } = 24;

    /// <summary>How many attempts a job gets before an expired lease fails it for good.</summary>
    [Range(1, 100)]
    public int MaxAttempts { get; set; } = 3;

    /// <summary>The largest image a worker may upload.</summary>
    [Range(1, 1 << 30)]
    public long MaxImageBytes { get; set; } = 32L << 20;

    /// <summary>
    /// Image bytes a worker may send inside its completion (base64 in the JSON body) instead of uploading each image
    /// first, over all the completion's images; the lease tells the worker (<c>inlineImageBytes</c>), and larger images
    /// are uploaded as before. One HTTP request fewer for a small image (a sync txt2img's). Keep it under three quarters
    /// of <c>Atelier:Server:MaxJsonBodyBytes</c> (base64 is a third larger); 0 turns it off.
    /// </summary>
    [Range(0, 64L << 20)]
    public long InlineImageBytes { get; set; } = 256 * 1024;

    /// <summary>How long a synchronous predict call (A1111 <c>txt2img</c>) waits for its job.</summary>
    [Range(1, 86400)]
    public int SyncTimeoutSeconds { get; set; } = 600;

    /// <summary>
    /// How often a waiting lease request looks at the queue again without being woken. Notifications (PostgreSQL's
    /// LISTEN, or a submit on the same replica) wake it sooner; this bounds the delay when one is lost.
    /// </summary>
    [Range(1, 3600)]
    public int LeaseRecheckSeconds { get; set; } = 2;

    /// <summary>The most worker ids one worker key may register (a key is meant for one fleet, not for unbounded ids).</summary>
    [Range(1, 1_000_000)]
    public int MaxWorkersPerKey { get; set; } = 1000;

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<JobsOptions>;
}
