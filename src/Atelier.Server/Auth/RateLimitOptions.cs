using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Auth;

/// <summary>Configuration section <c>Atelier:RateLimits</c>. Every limit is per replica.</summary>
public sealed partial class RateLimitOptions
{
    public const string SectionName = "Atelier:RateLimits";

    /// <summary>Off, nothing is limited (a benchmark of the bare API, say).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Requests of one credential (API token, session, platform admin key); worker keys are not limited.</summary>
    [ValidateObjectMembers]
    public Bucket PerCredential { get; set; } = new() { TokenLimit = 2000, TokensPerPeriod = 1000 };

    /// <summary>Requests of all the credentials of one tenant together (tokens and sessions; not the platform admin, not workers).</summary>
    [ValidateObjectMembers]
    public Bucket PerTenant { get; set; } = new() { TokenLimit = 10000, TokensPerPeriod = 5000 };

    /// <summary>
    /// Refused well-formed credentials (401) from one client address; past it, that address's credentials are not even
    /// checked until the window ends. Junk refused by its checksum is not counted.
    /// </summary>
    [ValidateObjectMembers]
    public Window FailedAuthPerAddress { get; set; } = new() { PermitLimit = 100, WindowSeconds = 60 };

    /// <summary>
    /// Checks of well-formed session credentials through the unauthenticated <c>POST /api/v1/sessions/check</c> from one
    /// client address (junk is refused by its checksum and not counted).
    /// </summary>
    [ValidateObjectMembers]
    public Window SessionChecksPerAddress { get; set; } = new() { PermitLimit = 120, WindowSeconds = 60 };

    /// <summary>Server-sent-event streams (<c>/api/v1/tasks/{id}/events</c>) one credential holds open at once.</summary>
    [Range(1, 100_000)]
    public int StreamsPerCaller { get; set; } = 16;

    /// <summary>Synchronous generations (<c>/sdapi/v1/txt2img|img2img</c>) one credential waits on at once.</summary>
    [Range(1, 100_000)]
    public int SyncWaitsPerCaller { get; set; } = 16;

    /// <summary>A token bucket: <see cref="TokenLimit"/> at once, refilled by <see cref="TokensPerPeriod"/> every <see cref="PeriodSeconds"/>.</summary>
    public sealed class Bucket
    {
        [Range(1, int.MaxValue)]
        public int TokenLimit { get; set; }

        [Range(1, int.MaxValue)]
        public int TokensPerPeriod { get; set; }

        [Range(0d, 86400d, MinimumIsExclusive = true)]
        public double PeriodSeconds { get; set; } = 1;
    }

    /// <summary>A fixed window: <see cref="PermitLimit"/> per <see cref="WindowSeconds"/>.</summary>
    public sealed class Window
    {
        [Range(1, int.MaxValue)]
        public int PermitLimit { get; set; }

        [Range(0d, 86400d, MinimumIsExclusive = true)]
        public double WindowSeconds { get; set; } = 60;
    }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<RateLimitOptions>;
}
