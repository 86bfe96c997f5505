namespace Atelier.Server.Auth;

/// <summary>Configuration section <c>Atelier:RateLimits</c>. Every limit is per replica.</summary>
public sealed class RateLimitOptions
{
    public const string Section = "Atelier:RateLimits";

    /// <summary>Off, nothing is limited (a benchmark of the bare API, say).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Requests of one credential (API token, session, platform admin key); worker keys are not limited.</summary>
    public Bucket PerCredential { get; set; } = new() { TokenLimit = 2000, TokensPerPeriod = 1000 };

    /// <summary>Requests of all the credentials of one tenant together (tokens and sessions; not the platform admin, not workers).</summary>
    public Bucket PerTenant { get; set; } = new() { TokenLimit = 10000, TokensPerPeriod = 5000 };

    /// <summary>
    /// Refused well-formed credentials (401) from one client address; past it, that address's credentials are not even
    /// checked until the window ends. Junk refused by its checksum is not counted.
    /// </summary>
    public Window FailedAuthPerAddress { get; set; } = new() { PermitLimit = 100, WindowSeconds = 60 };

    /// <summary>
    /// Checks of well-formed session credentials through the unauthenticated <c>POST /api/v1/sessions/check</c> from one
    /// client address (junk is refused by its checksum and not counted).
    /// </summary>
    public Window SessionChecksPerAddress { get; set; } = new() { PermitLimit = 120, WindowSeconds = 60 };

    /// <summary>Server-sent-event streams (<c>/api/v1/tasks/{id}/events</c>) one credential holds open at once.</summary>
    public int StreamsPerCaller { get; set; } = 16;

    /// <summary>Synchronous generations (<c>/sdapi/v1/txt2img|img2img</c>) one credential waits on at once.</summary>
    public int SyncWaitsPerCaller { get; set; } = 16;

    /// <summary>A token bucket: <see cref="TokenLimit"/> at once, refilled by <see cref="TokensPerPeriod"/> every <see cref="PeriodSeconds"/>.</summary>
    public sealed class Bucket
    {
        public int TokenLimit { get; set; }
        public int TokensPerPeriod { get; set; }
        public double PeriodSeconds { get; set; } = 1;
    }

    /// <summary>A fixed window: <see cref="PermitLimit"/> per <see cref="WindowSeconds"/>.</summary>
    public sealed class Window
    {
        public int PermitLimit { get; set; }
        public double WindowSeconds { get; set; } = 60;
    }

    /// <summary>Reports every problem of the section at once, at start.</summary>
    public sealed class Validator : Microsoft.Extensions.Options.IValidateOptions<RateLimitOptions>
    {
        public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, RateLimitOptions options) =>
            options.Problems().Select(p => $"{Section}:{p}").ToList() is { Count: > 0 } problems
                ? Microsoft.Extensions.Options.ValidateOptionsResult.Fail(problems)
                : Microsoft.Extensions.Options.ValidateOptionsResult.Success;
    }

    public IEnumerable<string> Problems()
    {
        foreach (var (name, b) in new[] { ("PerCredential", PerCredential), ("PerTenant", PerTenant) })
        {
            if (b.TokenLimit < 1 || b.TokensPerPeriod < 1 || b.PeriodSeconds is <= 0 or > 86400)
            {
                yield return $"{name}: TokenLimit and TokensPerPeriod must be at least 1 and PeriodSeconds above 0 and at most 86400";
            }
        }

        foreach (var (name, w) in new[] { ("FailedAuthPerAddress", FailedAuthPerAddress), ("SessionChecksPerAddress", SessionChecksPerAddress) })
        {
            if (w.PermitLimit < 1 || w.WindowSeconds is <= 0 or > 86400)
            {
                yield return $"{name}: PermitLimit must be at least 1 and WindowSeconds above 0 and at most 86400";
            }
        }

        if (StreamsPerCaller < 1 || SyncWaitsPerCaller < 1)
        {
            yield return "StreamsPerCaller and SyncWaitsPerCaller must be at least 1";
        }
    }
}
