using System.Text.RegularExpressions;

namespace Atelier.Core.Security;

/// <summary>A tenant's safety rules as the checks use them, the patterns compiled.</summary>
public sealed record TenantSafetyRules(IReadOnlyList<string> Words, IReadOnlyList<Regex> Patterns, string? ModerationUrl)
{
    public static readonly TenantSafetyRules None = new([], [], null);
}
