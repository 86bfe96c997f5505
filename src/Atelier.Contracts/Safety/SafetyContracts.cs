namespace Atelier.Contracts.Safety;

/// <summary>Replaces the tenant's safety rules: refused words, refused patterns (regular expressions) and a moderation endpoint.</summary>
public sealed record SafetyRulesRequest(IReadOnlyList<string>? Words, IReadOnlyList<string>? Patterns, string? ModerationUrl);

/// <summary>The tenant's safety rules as stored.</summary>
public sealed record SafetyRulesDto(IReadOnlyList<string> Words, IReadOnlyList<string> Patterns, string? ModerationUrl, DateTime? UpdatedAt);

/// <summary>Tests a URL before it is saved (a webhook, a moderation endpoint).</summary>
public sealed record UrlTestRequest(string? Url);

/// <summary>What the URL test found: the addresses it resolved to, whether TLS verified, the HTTP status and how long it took.</summary>
public sealed record UrlTestResult(string Url, bool Ok, IReadOnlyList<string> Addresses, bool Tls, int Status, double ElapsedMs);
