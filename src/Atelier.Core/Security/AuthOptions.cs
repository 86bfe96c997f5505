using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Security;

/// <summary>Configuration section <c>Atelier:Auth</c>.</summary>
public sealed partial class AuthOptions : IValidatableObject
{
    public const string SectionName = "Atelier:Auth";

    /// <summary>
    /// A platform admin key to install on first start instead of generating one (for scripted installs and tests).
    /// It must have the <c>atpk_</c> form; only its hash is stored.
    /// </summary>
    public string? BootstrapAdminKey { get; set; }

    /// <summary>
    /// How long a verified credential and its tenant's state are remembered in memory. Revocation, disabling and
    /// deactivation through this server evict at once; other replicas see them within this many seconds.
    /// </summary>
    [Range(0, 3600)]
    public int CacheSeconds { get; set; } = 5;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (BootstrapAdminKey is not null && !Secrets.IsWellFormed(BootstrapAdminKey, Secrets.PlatformKeyPrefix))
        {
            yield return new ValidationResult($"{SectionName}:BootstrapAdminKey: not a well-formed {Secrets.PlatformKeyPrefix}_ key.");
        }
    }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<AuthOptions>;
}
