using System.Text.RegularExpressions;
using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Security;

/// <summary>
/// The compiled safety patterns of this replica: the platform's, and each tenant's kept until its rules change (a
/// 5-second re-read of unchanged rules compiles nothing). Patterns match with <see cref="RegexOptions.NonBacktracking"/>,
/// so no pattern can take more than time linear in the prompt; one that construct cannot take (a backreference, a
/// lookaround, an atomic group) is refused when saved.
/// </summary>
public sealed class SafetyPatterns(IOptions<SafetyOptions> options, TimeProvider clock)
{
    private const RegexOptions Matching = RegexOptions.IgnoreCase | RegexOptions.CultureInvariant;
    private readonly TtlCache<string, (string Source, Regex[] Compiled)> _tenants = new(clock, Timeout.InfiniteTimeSpan, 10_000, StringComparer.Ordinal);
    private Regex[]? _platform;

    private TimeSpan Budget => TimeSpan.FromMilliseconds(Math.Clamp(options.Value.PatternBudgetMilliseconds, 10, 10_000));

    public IReadOnlyList<Regex> Platform => _platform ??= [.. options.Value.Patterns.Select(Compile)];

    /// <summary>A tenant's patterns, compiled once per distinct stored list.</summary>
    public IReadOnlyList<Regex> Of(string tenantId, string source, IReadOnlyList<string> patterns)
    {
        if (_tenants.TryGet(tenantId, out var known) && known.Source == source)
        {
            return known.Compiled;
        }

        Regex[] compiled = [.. patterns.Select(Compile)];
        _tenants.Set(tenantId, (source, compiled));
        return compiled;
    }

    public void Forget(string tenantId) => _tenants.Remove(tenantId);

    /// <summary>Checks a pattern as it is saved: a failure is <c>p_common_inputinvalid</c> naming <c>patterns</c>.</summary>
    public static void CheckNew(string pattern)
    {
        try
        {
            _ = new Regex(pattern, Matching | RegexOptions.NonBacktracking);
        }
        catch (NotSupportedException e)
        {
            throw AtelierException.InvalidInput("patterns",
                $"'{pattern}' uses what safety patterns cannot (backreferences, lookarounds, atomic groups, conditionals, or too large a repetition): {e.Message}");
        }
        catch (ArgumentException e)
        {
            throw AtelierException.InvalidInput("patterns", $"'{pattern}' is not a regular expression: {e.Message}");
        }
    }

    /// <summary>
    /// Without backtracking where the pattern allows it; a pattern saved before that rule (or the platform's own) that
    /// needs backtracking keeps working under the budget.
    /// </summary>
    private Regex Compile(string pattern)
    {
        try
        {
            return new Regex(pattern, Matching | RegexOptions.NonBacktracking, Budget);
        }
        catch (NotSupportedException)
        {
            return new Regex(pattern, Matching, Budget);
        }
    }

    /// <summary>Whether any pattern matches any of the texts, all of it within one budget (fail closed past it).</summary>
    public bool AnyMatch(IEnumerable<Regex> patterns, IReadOnlyList<string> texts)
    {
        var started = clock.GetTimestamp();
        foreach (var pattern in patterns)
        {
            foreach (var text in texts)
            {
                try
                {
                    if (text.Length > 0 && pattern.IsMatch(text))
                    {
                        return true;
                    }
                }
                catch (RegexMatchTimeoutException)
                {
                    throw new PatternBudgetException();
                }

                if (clock.GetElapsedTime(started) > Budget)
                {
                    throw new PatternBudgetException();
                }
            }
        }

        return false;
    }
}
