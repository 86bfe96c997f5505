using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Security;

/// <summary>Configuration section <c>Atelier:Safety</c>: the platform's own rules, over every tenant's.</summary>
public sealed partial class SafetyOptions : IValidatableObject
{
    public const string SectionName = "Atelier:Safety";

    /// <summary>Words refused in every tenant's prompts.</summary>
    public List<string> Words { get; set; } = [];

    /// <summary>Regular expressions refused in every tenant's prompts.</summary>
    public List<string> Patterns { get; set; } = [];

    /// <summary>How long a moderation endpoint may take before the job is refused (the checker fails closed).</summary>
    [Range(1, 60)]
    public int ModerationTimeoutSeconds { get; set; } = 5;

    /// <summary>Lets moderation endpoints be on loopback or private networks (tests, closed networks).</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>The most a moderation endpoint's answer may hold; a longer one is a failed check (fail closed).</summary>
    [Range(1, 16 * 1024 * 1024)]
    public int ModerationMaxReplyBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// The CPU time all patterns together may take on one request's prompts; past it the request is refused (fail
    /// closed). Patterns run without backtracking, in time linear in the prompt, so only a pattern kept from before
    /// (one that needs backtracking) can come near it.
    /// </summary>
    [Range(10, 10_000)]
    public int PatternBudgetMilliseconds { get; set; } = 500;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        for (var i = 0; i < Patterns.Count; i++)
        {
            string? problem = null;
            try
            {
                _ = new Regex(Patterns[i]);
            }
            catch (ArgumentException e)
            {
                problem = e.Message;
            }

            if (problem is not null)
            {
                yield return new ValidationResult($"{SectionName}:Patterns:{i}: not a regular expression: {problem}");
            }
        }
    }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<SafetyOptions>;
}
