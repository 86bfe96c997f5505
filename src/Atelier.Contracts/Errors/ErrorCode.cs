using System.Text.RegularExpressions;

namespace Atelier.Contracts.Errors;

/// <summary>One entry of the error catalog: the seed code, its HTTP status and its messages.</summary>
/// <param name="Code">The seed code, verbatim (for example <c>b_user_tenantnotfound</c>).</param>
/// <param name="Status">The HTTP status this code is answered with unless a situation names another.</param>
/// <param name="MessageZh">The seed's Chinese message, verbatim, with its <c>${...}</c> placeholders.</param>
/// <param name="MessageEn">The English message, with the same placeholders.</param>
public sealed partial record ErrorCode(string Code, int Status, string MessageZh, string MessageEn)
{
    /// <summary>The placeholder names of the message, in order (<c>${Role}</c> gives <c>Role</c>).</summary>
    public IReadOnlyList<string> Placeholders { get; } =
        [.. PlaceholderPattern().Matches(MessageZh).Select(m => m.Groups[1].Value).Distinct()];

    /// <summary>The message in the language asked for, with the placeholders filled in.</summary>
    /// <param name="english">English when true, the seed's Chinese otherwise.</param>
    /// <param name="values">Placeholder values by name; a missing one is left empty.</param>
    public string Format(bool english, IReadOnlyDictionary<string, string>? values)
    {
        var template = english ? MessageEn : MessageZh;
        return PlaceholderPattern().Replace(template, m =>
            values is not null && values.TryGetValue(m.Groups[1].Value, out var v) ? v : string.Empty);
    }

    [GeneratedRegex(@"\$\{([A-Za-z]+)\}")]
    private static partial Regex PlaceholderPattern();

    public override string ToString() => Code;
}
