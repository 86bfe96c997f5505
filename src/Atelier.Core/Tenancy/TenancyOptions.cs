namespace Atelier.Core.Tenancy;

/// <summary>Configuration section <c>Atelier:Tenancy</c>.</summary>
public sealed class TenancyOptions
{
    public const string Section = "Atelier:Tenancy";

    /// <summary>The file tenant init reads its default roles, config and models from. Relative paths are under the app folder.</summary>
    public string DefaultsFile { get; set; } = "defaults/tenant-defaults.json";
}
