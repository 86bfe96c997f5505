using System.ComponentModel.DataAnnotations;
using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Hosting;

/// <summary>Configuration section <c>Atelier:Server</c>.</summary>
public sealed partial class ServerOptions : IValidatableObject
{
    public const string SectionName = "Atelier:Server";

    /// <summary>Where the server listens. Loopback by default: exposing it is a decision, not an accident.</summary>
    [Required]
    public string Urls { get; set; } = "http://127.0.0.1:5080";

    /// <summary>The folder for the default SQLite file, the local object store and the default master key file.</summary>
    [Required]
    public string DataDirectory { get; set; } = "data";

    /// <summary>The largest JSON request body; bigger bodies are answered 413 in the envelope.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public long MaxJsonBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// <c>X-Forwarded-For</c>, <c>-Proto</c> and <c>-Host</c> from a TLS proxy in front: the client's address, and the
    /// public scheme and host in the links the server hands out (upload URLs, studio links). Off by default.
    /// </summary>
    public ForwardedHeadersSettings ForwardedHeaders { get; set; } = new();

    /// <summary>
    /// The language of error messages (<c>zh</c>, the seed's, or <c>en</c>) for a caller whose <c>Accept-Language</c>
    /// names neither and whose tenant chose none.
    /// </summary>
    public string DefaultLanguage { get; set; } = "zh";

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (DefaultLanguage is not ("zh" or "en"))
        {
            yield return new ValidationResult($"{SectionName}:DefaultLanguage: '{DefaultLanguage}' is not zh or en.");
        }

        foreach (var proxy in ForwardedHeaders.KnownProxies.Where(p => !IPAddress.TryParse(p, out _)))
        {
            yield return new ValidationResult($"{SectionName}:ForwardedHeaders:KnownProxies: '{proxy}' is not an IP address.");
        }

        foreach (var network in ForwardedHeaders.KnownNetworks.Where(n => !System.Net.IPNetwork.TryParse(n, out _)))
        {
            yield return new ValidationResult($"{SectionName}:ForwardedHeaders:KnownNetworks: '{network}' is not a network in CIDR notation (10.0.0.0/8).");
        }
    }

    /// <summary>Section <c>Atelier:Server:ForwardedHeaders</c>.</summary>
    public sealed class ForwardedHeadersSettings
    {
        /// <summary>Read the forwarded headers at all (only from the proxies below).</summary>
        public bool Enabled { get; set; }

        /// <summary>The proxies' addresses whose headers are believed. With neither list set: loopback only (127.0.0.0/8, ::1).</summary>
        public List<string> KnownProxies { get; set; } = [];

        /// <summary>Networks (CIDR) whose proxies' headers are believed.</summary>
        public List<string> KnownNetworks { get; set; } = [];

        /// <summary>The middleware's options: the three headers, from the configured proxies (or loopback).</summary>
        public ForwardedHeadersOptions ToOptions()
        {
            var options = new ForwardedHeadersOptions
            {
                ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor
                    | Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedProto
                    | Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedHost,
            };
            options.KnownProxies.Clear();
            options.KnownIPNetworks.Clear();
            if (KnownProxies.Count == 0 && KnownNetworks.Count == 0)
            {
                options.KnownIPNetworks.Add(new System.Net.IPNetwork(IPAddress.Loopback, 8));
                options.KnownProxies.Add(IPAddress.IPv6Loopback);
                return options;
            }

            foreach (var proxy in KnownProxies)
            {
                options.KnownProxies.Add(IPAddress.Parse(proxy));
            }

            foreach (var network in KnownNetworks)
            {
                options.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(network));
            }

            return options;
        }
    }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<ServerOptions>;
}
