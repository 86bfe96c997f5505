using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Models;

/// <summary>Configuration section <c>Atelier:Models</c>.</summary>
public sealed partial class ModelsOptions
{
    public const string SectionName = "Atelier:Models";

    /// <summary>The largest model file accepted, by upload or download.</summary>
    [Range(typeof(long), "1", "9223372036854775807")]
    public long MaxFileBytes { get; set; } = 64L * 1024 * 1024 * 1024;

    /// <summary>How long an upload URL stays valid.</summary>
    [Range(1, 7 * 24 * 60)]
    public int UploadLifetimeMinutes { get; set; } = 60;

    /// <summary>Attempts per download before it fails (transient failures only: timeouts, 5xx, 429, broken connections).</summary>
    [Range(1, 100)]
    public int DownloadAttempts { get; set; } = 3;

    /// <summary>Seconds before the first retry; it doubles each time.</summary>
    [Range(0d, 3600d)]
    public double DownloadRetryDelaySeconds { get; set; } = 2;

    /// <summary>Downloads one server runs at once.</summary>
    [Range(1, 64)]
    public int DownloadConcurrency { get; set; } = 2;

    /// <summary>How often a replica looks for downloads left by a replica that stopped or died (their download lock is free), and queues them again.</summary>
    [Range(1, 3600)]
    public int DownloadRescueSeconds { get; set; } = 30;

    /// <summary>How long one download may take.</summary>
    [Range(1, 7 * 86400)]
    public int DownloadTimeoutSeconds { get; set; } = 6 * 3600;

    /// <summary>How many redirects a download follows (each hop is checked by the address guard).</summary>
    [Range(0, 20)]
    public int MaxRedirects { get; set; } = 5;

    /// <summary>
    /// Lets downloads reach loopback, private and link-local addresses. Off by default: a model URL is the user's,
    /// and must not reach the server's own network. Tests that serve files on loopback turn it on.
    /// </summary>
    public bool AllowPrivateNetworks { get; set; }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<ModelsOptions>;
}
