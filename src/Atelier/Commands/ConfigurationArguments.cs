using System.CommandLine;
using System.Text.RegularExpressions;

namespace Atelier.Commands;

/// <summary>
/// The host's configuration on the command line of <c>serve</c> and <c>engine</c>: keys as <c>--Section:Key=value</c> or
/// <c>--Section:Key value</c>, passed on to the host builder. Any other word is refused as the command line is parsed.
/// </summary>
internal static partial class ConfigurationArguments
{
    public static Argument<string[]> Create()
    {
        var argument = new Argument<string[]>("configuration")
        {
            Description = "Any configuration key, as --Section:Key=value or --Section:Key value (docs/operations.md lists them)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        argument.Validators.Add(r =>
        {
            if (Problem([.. r.Tokens.Select(t => t.Value)]) is { } problem)
            {
                r.AddError(problem);
            }
        });
        return argument;
    }

    private static string? Problem(IReadOnlyList<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var key = Key().Match(tokens[i]);
            if (!key.Success)
            {
                return $"'{tokens[i]}' is neither an option of this command nor a configuration key (--Section:Key=value).";
            }

            if (key.Groups["value"].Success)
            {
                continue;
            }

            // The value may start with a single dash (a negative number), never with two: that is the next key.
            if (i + 1 >= tokens.Count || tokens[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                return $"{tokens[i]} needs a value ({tokens[i]}=value).";
            }

            i++;
        }

        return null;
    }

    [GeneratedRegex(@"^--[A-Za-z][^:=\s]*(:[^:=\s]+)+(?<value>=.*)?$", RegexOptions.Singleline)]
    private static partial Regex Key();
}
