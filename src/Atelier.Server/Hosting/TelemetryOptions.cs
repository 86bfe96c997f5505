using Microsoft.Extensions.Options;

namespace Atelier.Server.Hosting;

/// <summary>Configuration section <c>Atelier:Telemetry</c>: OpenTelemetry export and the Prometheus endpoint.</summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Atelier:Telemetry";

    /// <summary>Where to send traces and metrics over OTLP; none (and no <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>): nothing is exported.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>Serve <c>GET /metrics</c> (Prometheus text), to the platform admin key or <see cref="MetricsToken"/>.</summary>
    public bool Prometheus { get; set; }

    /// <summary>A scrape token for <c>/metrics</c> (sent as <c>Authorization: Bearer …</c>), so a scraper needs no admin key.</summary>
    public string? MetricsToken { get; set; }

    internal sealed class Validator : IValidateOptions<TelemetryOptions>
    {
        public ValidateOptionsResult Validate(string? name, TelemetryOptions options)
        {
            var problems = new List<string>();
            if (!string.IsNullOrWhiteSpace(options.OtlpEndpoint) && !Uri.TryCreate(options.OtlpEndpoint, UriKind.Absolute, out _))
            {
                problems.Add($"{SectionName}:{nameof(OtlpEndpoint)} must be an absolute URL.");
            }

            if (options.MetricsToken is { } token && token.Length < 24)
            {
                problems.Add($"{SectionName}:{nameof(MetricsToken)} must be at least 24 characters.");
            }

            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}
