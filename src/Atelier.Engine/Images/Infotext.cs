using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Atelier.Engine.Images;

/// <summary>
/// AUTOMATIC1111's "parameters" text: the prompt, an optional "Negative prompt: " line, then one line of
/// "Key: value" pairs joined by ", " (values holding ',', ':' or a newline JSON-quoted; null values left out).
/// </summary>
public static partial class Infotext
{
    public static string Format(string prompt, string? negativePrompt, IEnumerable<KeyValuePair<string, object?>> parameters)
    {
        var sb = new StringBuilder(prompt);
        if (!string.IsNullOrEmpty(negativePrompt))
        {
            sb.Append("\nNegative prompt: ").Append(negativePrompt);
        }

        var pairs = parameters.Where(p => p.Value is not null).Select(p => $"{p.Key}: {Quote(Convert.ToString(p.Value, CultureInfo.InvariantCulture)!)}");
        sb.Append('\n').Append(string.Join(", ", pairs));
        return sb.ToString();
    }

    private static string Quote(string value) =>
        value.Contains(',', StringComparison.Ordinal) || value.Contains(':', StringComparison.Ordinal) || value.Contains('\n', StringComparison.Ordinal)
            ? JsonSerializer.Serialize(value)
            : value;

    /// <summary>Parses infotext as A1111's parse_generation_parameters does (the last line counts only with ≥ 3 pairs).</summary>
    public static (string Prompt, string NegativePrompt, Dictionary<string, string> Parameters) Parse(string text)
    {
        var lines = text.Trim().Split('\n');
        var parameters = new Dictionary<string, string>();
        var last = lines[^1];
        var matches = Pair().Matches(last);
        var body = lines;
        if (matches.Count >= 3)
        {
            body = lines[..^1];
            foreach (Match m in matches)
            {
                var key = m.Groups[1].Value.Trim();
                var value = m.Groups[2].Value.Trim();
                if (value.StartsWith('"') && value.EndsWith('"') && value.Length >= 2)
                {
                    value = JsonSerializer.Deserialize<string>(value) ?? value;
                }

                parameters[key] = value;
            }

            if (parameters.TryGetValue("Size", out var size) && size.Split('x') is [var w, var h])
            {
                parameters["Size-1"] = w;
                parameters["Size-2"] = h;
            }
        }

        var prompt = new List<string>();
        var negative = new List<string>();
        var inNegative = false;
        foreach (var line in body)
        {
            if (line.StartsWith("Negative prompt:", StringComparison.Ordinal))
            {
                inNegative = true;
                negative.Add(line["Negative prompt:".Length..].Trim());
            }
            else if (inNegative)
            {
                negative.Add(line);
            }
            else
            {
                prompt.Add(line);
            }
        }

        parameters.TryAdd("Clip skip", "1");
        return (string.Join('\n', prompt), string.Join('\n', negative), parameters);
    }

    [GeneratedRegex(@"\s*(\w[\w \-/]+):\s*(""(?:\\.|[^\\""])+""|[^,]*)(?:,|$)")]
    private static partial Regex Pair();
}
