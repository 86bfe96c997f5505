using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Security;

/// <summary>Configuration section <c>Atelier:UrlTests</c>.</summary>
public sealed partial class UrlTestOptions
{
    public const string SectionName = "Atelier:UrlTests";

    /// <summary>How long the whole test (DNS, connect, TLS, the HTTP answer) may take.</summary>
    [Range(1, 60)]
    public int TimeoutSeconds { get; set; } = 5;

    /// <summary>Lets a test reach loopback and private addresses (tests, closed networks). Off: such URLs fail the test.</summary>
    public bool AllowPrivateNetworks { get; set; }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<UrlTestOptions>;
}
