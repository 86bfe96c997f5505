using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Webhooks;

/// <summary>Configuration section <c>Atelier:Webhooks</c>.</summary>
public sealed partial class WebhookOptions : IValidatableObject
{
    public const string SectionName = "Atelier:Webhooks";

    /// <summary>
    /// When each attempt is made, in seconds after the previous one (the first is immediate): Standard Webhooks'
    /// schedule, 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h (about 75 h in all). Its length is the number of attempts.
    /// </summary>
    public double[]? RetryScheduleSeconds { get; set; }

    public static readonly double[] DefaultSchedule = [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

    /// <summary>The schedule in force: <see cref="RetryScheduleSeconds"/> when set (a configured list replaces the default whole).</summary>
    public double[] Schedule => RetryScheduleSeconds is { Length: > 0 } s ? s : DefaultSchedule;

    /// <summary>Each delay is moved by up to this fraction either way, so a receiver that came back is not hit by every sender at once.</summary>
    [Range(0d, 1d, MaximumIsExclusive = true)]
    public double Jitter { get; set; } = 0.1;

    /// <summary>How long a receiver has, once connected, to send its answer's headers (the body is never read).</summary>
    [Range(1, 300)]
    public int TimeoutSeconds { get; set; } = 10;

    /// <summary>How long connecting to a receiver may take.</summary>
    [Range(1, 300)]
    public int ConnectTimeoutSeconds { get; set; } = 5;

    /// <summary>How often the relay looks for due messages when nothing woke it.</summary>
    [Range(10, 60_000)]
    public int PollMilliseconds { get; set; } = 1000;

    /// <summary>Messages sent at once by one replica.</summary>
    [Range(1, 1024)]
    public int Concurrency { get; set; } = 64;

    /// <summary>
    /// Messages of one tenant in flight at once (over all replicas): a tenant whose receiver is slow or silent holds at
    /// most this many of the relay's slots, and the others' messages go meanwhile.
    /// </summary>
    [Range(1, 1024)]
    public int PerTenantConcurrency { get; set; } = 16;

    /// <summary>Lets webhooks reach loopback and private addresses (tests, receivers inside the same network).</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>Single <c>host:port</c> endpoints let through the address guard while it is on (a receiver on the same network).</summary>
    public string[] AllowedPrivateEndpoints { get; set; } = [];

    /// <summary>
    /// Legacy: the key (base64, 32 bytes) that sealed the apps' signing secrets before master keys
    /// (<c>Atelier:Security</c>). Read only at start, to open secrets sealed with it and seal them again under the master key.
    /// </summary>
    public string? SecretKey { get; set; }

    /// <summary>How long a finished message (delivered or failed) and its attempts stay in the delivery log.</summary>
    [Range(1, 3650)]
    public int LogRetentionDays { get; set; } = 30;

    /// <summary>The longest the previous secret may stay valid after a rotation.</summary>
    [Range(0, 365 * 86400)]
    public int MaxRotationOverlapSeconds { get; set; } = 7 * 86400;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (RetryScheduleSeconds?.Any(s => s < 0) == true)
        {
            yield return new ValidationResult($"{SectionName}:RetryScheduleSeconds: no delay may be negative.");
        }

        foreach (var endpoint in AllowedPrivateEndpoints.Where(e => !IsHostAndPort(e)))
        {
            yield return new ValidationResult($"{SectionName}:AllowedPrivateEndpoints: '{endpoint}' is not a host:port pair.");
        }
    }

    private static bool IsHostAndPort(string endpoint) =>
        endpoint.LastIndexOf(':') is > 0 and var colon && int.TryParse(endpoint[(colon + 1)..], out var port) && port is > 0 and <= 65535;

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<WebhookOptions>;
}
