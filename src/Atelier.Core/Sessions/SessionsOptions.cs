using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Sessions;

/// <summary>Configuration section <c>Atelier:Sessions</c>.</summary>
public sealed partial class SessionsOptions
{
    public const string SectionName = "Atelier:Sessions";

    /// <summary>How often the sweeper ends expired sessions: an expired session is ended within this delay.</summary>
    [Range(1, 3600)]
    public int SweepIntervalSeconds { get; set; } = 30;

    /// <summary>
    /// The most expired sessions of one tenant the sweeper ends before it turns to the next tenant (it goes round the
    /// tenants until none has any left), so one tenant's backlog never holds up another's. 1 to 10,000.
    /// </summary>
    [Range(1, 10_000)]
    public int SweepBatchSize { get; set; } = 200;

    /// <summary>The longest a session may last from its creation, refreshes included.</summary>
    [Range(60, int.MaxValue)]
    public long MaxSessionSeconds { get; set; } = 30L * 86400;

    /// <summary>The studio's address in the URLs handed to end users; the request's own address when unset.</summary>
    [Url]
    public string? StudioBaseUrl { get; set; }

    /// <summary>
    /// How often the leader stops the studio instances of dedicated sessions that have ended or expired: an instance is
    /// stopped within this delay of its session's end.
    /// </summary>
    [Range(1, 3600)]
    public int StudioReapIntervalSeconds { get; set; } = 5;

    /// <summary>How long the studio waits for a dedicated session's instance page (its HTML) before it answers <c>b_html_htmlcontentgeterror</c>.</summary>
    [Range(1, 600)]
    public int StudioFetchTimeoutSeconds { get; set; } = 30;

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<SessionsOptions>;
}
