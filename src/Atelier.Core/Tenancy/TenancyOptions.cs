using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Tenancy;

/// <summary>Configuration section <c>Atelier:Tenancy</c>.</summary>
public sealed partial class TenancyOptions
{
    public const string SectionName = "Atelier:Tenancy";

    /// <summary>The file tenant init reads its default roles, config and models from. Relative paths are under the app folder.</summary>
    [Required]
    public string DefaultsFile { get; set; } = "defaults/tenant-defaults.json";

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<TenancyOptions>;
}
