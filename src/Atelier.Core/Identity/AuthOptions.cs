namespace Atelier.Core.Identity;

/// <summary>Configuration section <c>Atelier:Auth</c>.</summary>
public sealed class AuthOptions
{
    public const string Section = "Atelier:Auth";

    /// <summary>
    /// A platform admin key to install on first start instead of generating one (for scripted installs and tests).
    /// It must have the <c>atpk_</c> form; only its hash is stored.
    /// </summary>
    public string? BootstrapAdminKey { get; set; }

    /// <summary>
    /// How long a verified credential and its tenant's state are remembered in memory. Revocation, disabling and
    /// deactivation through this server evict at once; other replicas see them within this many seconds.
    /// </summary>
    public int CacheSeconds { get; set; } = 5;
}
