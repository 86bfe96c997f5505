using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Security;

/// <summary>Configuration section <c>Atelier:Security</c>.</summary>
public sealed partial class SecurityOptions : IValidatableObject
{
    public const string SectionName = "Atelier:Security";

    /// <summary>The master key, base64 of 32 bytes (from a secret store, the same on every replica). Set, no key file is read.</summary>
    public string? MasterKey { get; set; }

    /// <summary>
    /// Where the master key is kept when <see cref="MasterKey"/> is not set. Unset, it is <c>&lt;DataDirectory&gt;/keys/master.key</c>,
    /// created at first start (mode 0600); a configured path must exist and be readable, or the server does not start.
    /// </summary>
    public string? KeyFile { get; set; }

    /// <summary>Keys rotated out: they still verify image URLs and open sealed secrets until their <see cref="PreviousKey.Until"/>.</summary>
    public List<PreviousKey> PreviousKeys { get; set; } = [];

    public sealed class PreviousKey
    {
        /// <summary>Base64 of 32 bytes.</summary>
        public string? Key { get; set; }

        /// <summary>The end of the grace period (UTC); unset, the key is accepted for as long as it is listed.</summary>
        public DateTimeOffset? Until { get; set; }
    }

    /// <summary>The keys' form, and a configured key file that cannot be read: the checks <see cref="MasterKeys.Load"/> makes, all at once.</summary>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrWhiteSpace(MasterKey))
        {
            if (MasterKeys.KeyProblem(MasterKey, $"{SectionName}:MasterKey") is { } problem)
            {
                yield return new ValidationResult(problem);
            }
        }
        else if (!string.IsNullOrWhiteSpace(KeyFile) && MasterKeys.KeyFileProblem(Path.GetFullPath(KeyFile)) is { } problem)
        {
            yield return new ValidationResult(problem);
        }

        for (var i = 0; i < PreviousKeys.Count; i++)
        {
            if (MasterKeys.KeyProblem(PreviousKeys[i].Key, $"{SectionName}:PreviousKeys:{i}:Key") is { } problem)
            {
                yield return new ValidationResult(problem);
            }
        }
    }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<SecurityOptions>;
}
