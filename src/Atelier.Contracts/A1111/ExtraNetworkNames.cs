using System.Text.RegularExpressions;

namespace Atelier.Contracts.A1111;

/// <summary>
/// The LoRA names an A1111 prompt asks for (<c>&lt;lora:name:…&gt;</c>), as the server reads them to find the tenant's LoRA
/// models for a job. The engine parses the same syntax for the multipliers (<c>Atelier.Engine.Text.ExtraNetworks</c>).
/// </summary>
public static partial class ExtraNetworkNames
{
    [GeneratedRegex(@"<lora:([^:>]+)(?::[^>]*)?>")]
    private static partial Regex Lora();

    /// <summary>Whether <paramref name="text"/> holds <paramref name="word"/> on its own (any case; not inside a longer word): how an embedding's name is found.</summary>
    public static bool HasWord(string text, string word) =>
        word.Length > 0 && Regex.IsMatch(text, $@"(?<![\p{{L}}\p{{N}}_]){Regex.Escape(word)}(?![\p{{L}}\p{{N}}_])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>The distinct LoRA names in <paramref name="prompt"/>, in the order they first appear.</summary>
    public static IReadOnlyList<string> Loras(string? prompt) =>
        prompt is null ? [] : [.. Lora().Matches(prompt).Select(m => m.Groups[1].Value.Trim()).Where(n => n.Length > 0).Distinct(StringComparer.Ordinal)];
}
