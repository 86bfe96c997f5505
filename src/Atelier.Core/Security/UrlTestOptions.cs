namespace Atelier.Core.Security;

/// <summary>Configuration section <c>Atelier:UrlTests</c>.</summary>
public sealed class UrlTestOptions
{
    public const string Section = "Atelier:UrlTests";

    /// <summary>How long the whole test (DNS, connect, TLS, the HTTP answer) may take.</summary>
    public int TimeoutSeconds { get; set; } = 5;

    /// <summary>Lets a test reach loopback and private addresses (tests, closed networks). Off: such URLs fail the test.</summary>
    public bool AllowPrivateNetworks { get; set; }
}
