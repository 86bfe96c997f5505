using System.Diagnostics.Metrics;

namespace Atelier.Core.Common;

/// <summary>
/// The server's own meter, <c>Atelier</c> (docs/operations.md, *Metrics and health*): instruments recorded where the
/// events happen. Recording costs a few atomic adds, and nothing at all while no listener (an exporter) is attached.
/// The gauges that need the database are the host's (<c>AtelierGauges</c>), read from a cache.
/// </summary>
public static class AtelierMeter
{
    public const string Name = "Atelier";

    public static readonly Meter Meter = new(Name);

    /// <summary>How long a job waited in the queue before the lease that ran it (seconds).</summary>
    public static readonly Histogram<double> LeaseWait = Meter.CreateHistogram<double>("atelier.lease.wait", "s",
        "Time from a job's submit to the lease of its attempt");

    /// <summary>How long a job ran on its worker, from its lease to its completion, by engine (seconds).</summary>
    public static readonly Histogram<double> JobDuration = Meter.CreateHistogram<double>("atelier.job.duration", "s",
        "Time from a job's lease to its completion, by engine");

    /// <summary>
    /// Leases whose model none of the worker's slots had loaded (by its hot request info), by engine: each is a model
    /// load on the worker. Hot-model scheduling exists to keep this low.
    /// </summary>
    public static readonly Counter<long> ModelLoads = Meter.CreateCounter<long>("atelier.model.loads", "{load}",
        "Leases of a job whose model none of the worker's slots had loaded, by engine");

    public static readonly Counter<long> WebhookAttempts = Meter.CreateCounter<long>("atelier.webhook.attempts", "{attempt}", "Webhook delivery attempts");

    public static readonly Counter<long> WebhookFailures = Meter.CreateCounter<long>("atelier.webhook.failures", "{attempt}",
        "Webhook delivery attempts that did not get a 2xx answer");
}
