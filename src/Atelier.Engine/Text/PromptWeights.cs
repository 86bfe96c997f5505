using System.Globalization;
using System.Text;

namespace Atelier.Engine.Text;

/// <summary>A piece of a prompt and its attention weight.</summary>
public readonly record struct WeightedText(string Text, float Weight);

/// <summary>
/// AUTOMATIC1111's emphasis syntax: <c>(word)</c> multiplies attention by 1.1, <c>[word]</c> divides it by 1.1,
/// <c>(word:1.3)</c> sets it, nesting multiplies, <c>\(</c> <c>\)</c> <c>\[</c> <c>\]</c> <c>\\</c> are literal, and an
/// unclosed bracket applies to the rest of the prompt.
/// </summary>
public static class PromptWeights
{
    private const float Round = 1.1f;

    public static IReadOnlyList<WeightedText> Parse(string prompt)
    {
        var result = new List<(StringBuilder Text, float Weight)>();
        var round = new Stack<int>();
        var square = new Stack<int>();

        void Multiply(int start, float factor)
        {
            for (var i = start; i < result.Count; i++)
            {
                result[i] = (result[i].Text, result[i].Weight * factor);
            }
        }

        void Add(string text) => result.Add((new StringBuilder(text), 1f));

        var i = 0;
        while (i < prompt.Length)
        {
            var c = prompt[i];
            if (c == '\\' && i + 1 < prompt.Length)
            {
                Add(prompt[i + 1].ToString());
                i += 2;
                continue;
            }

            switch (c)
            {
                case '(':
                    round.Push(result.Count);
                    break;
                case '[':
                    square.Push(result.Count);
                    break;
                case ')' when round.Count > 0:
                    Multiply(round.Pop(), Round);
                    break;
                case ']' when square.Count > 0:
                    Multiply(square.Pop(), 1 / Round);
                    break;
                case ':' when round.Count > 0 && TryReadWeight(prompt, i + 1, out var weight, out var end):
                    Multiply(round.Pop(), weight);
                    i = end; // the closing ')'
                    break;
                default:
                    Add(c.ToString());
                    break;
            }

            i++;
        }

        foreach (var start in round)
        {
            Multiply(start, Round);
        }

        foreach (var start in square)
        {
            Multiply(start, 1 / Round);
        }

        // Join neighbours of equal weight.
        var merged = new List<WeightedText>();
        foreach (var (text, weight) in result)
        {
            if (merged.Count > 0 && Math.Abs(merged[^1].Weight - weight) < 1e-6)
            {
                merged[^1] = merged[^1] with { Text = merged[^1].Text + text };
            }
            else
            {
                merged.Add(new WeightedText(text.ToString(), weight));
            }
        }

        if (merged.Count == 0)
        {
            return [new WeightedText("", 1f)];
        }

        // A1111's BREAK (the word alone, in capitals): a piece of weight −1 that ends the chunk it falls in.
        var pieces = new List<WeightedText>();
        foreach (var piece in merged)
        {
            var parts = BreakWord.Split(piece.Text);
            for (var p = 0; p < parts.Length; p++)
            {
                if (p > 0)
                {
                    pieces.Add(Break);
                }

                if (parts[p].Length > 0 || parts.Length == 1)
                {
                    pieces.Add(piece with { Text = parts[p] });
                }
            }
        }

        return pieces;
    }

    /// <summary>The piece that stands for A1111's <c>BREAK</c>.</summary>
    public static readonly WeightedText Break = new("BREAK", -1);

    private static readonly System.Text.RegularExpressions.Regex BreakWord = new(@"\s*\bBREAK\b\s*", System.Text.RegularExpressions.RegexOptions.Singleline);

    private static bool TryReadWeight(string s, int from, out float weight, out int close)
    {
        close = s.IndexOf(')', from);
        weight = 1;
        return close > from && float.TryParse(s.AsSpan(from, close - from).Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out weight);
    }
}
