namespace Atelier.Core.Security;

/// <summary>Configuration section <c>Atelier:Safety</c>: the platform's own rules, over every tenant's.</summary>
public sealed class SafetyOptions
{
    public const string Section = "Atelier:Safety";

    public List<string> Words { get; set; } = [];
    public List<string> Patterns { get; set; } = [];

    /// <summary>How long a moderation endpoint may take before the job is refused (the checker fails closed).</summary>
    public int ModerationTimeoutSeconds { get; set; } = 5;

    /// <summary>Lets moderation endpoints be on loopback or private networks (tests, closed networks).</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>The most a moderation endpoint's answer may hold; a longer one is a failed check (fail closed).</summary>
    public int ModerationMaxReplyBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// The CPU time all patterns together may take on one request's prompts; past it the request is refused (fail
    /// closed). Patterns run without backtracking, in time linear in the prompt, so only a pattern kept from before
    /// (one that needs backtracking) can come near it.
    /// </summary>
    public int PatternBudgetMilliseconds { get; set; } = 500;
}
