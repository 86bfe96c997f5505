namespace Atelier.Data.Entities;

/// <summary>A tenant's content safety rules: words and patterns refused in prompts, and an optional moderation endpoint.</summary>
public sealed class SafetyRules : ITenantOwned
{
    public required string TenantId { get; set; }
    /// <summary>JSON array of words.</summary>
    public string WordsJson { get; set; } = "[]";
    /// <summary>JSON array of regular expressions.</summary>
    public string PatternsJson { get; set; } = "[]";
    public string? ModerationUrl { get; set; }
    public DateTime UpdatedAt { get; set; }
}
