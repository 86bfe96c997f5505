using System.Security.Cryptography;
using System.Text;
using Atelier.Contracts.Errors;
using Atelier.Core;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Server.Auth;
using Atelier.Server.Errors;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Atelier.Server.Hosting;

/// <summary>
/// OpenTelemetry: our meter (<see cref="AtelierMeter"/> and <see cref="AtelierGauges"/>) with ASP.NET Core's and
/// HttpClient's instruments; traces (ASP.NET Core, HttpClient, EF Core) and OTLP export only when an endpoint is
/// configured; <c>/metrics</c> (Prometheus text) only when <see cref="TelemetryOptions.Prometheus"/> is on, and then
/// only to the platform admin key or the scrape token.
/// </summary>
public static class Telemetry
{
    public const string OtlpEnvironmentVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    public static WebApplicationBuilder AddAtelierTelemetry(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddValidatedSection<TelemetryOptions, TelemetryOptions.Validator>(builder.Configuration, TelemetryOptions.SectionName);
        var options = builder.Configuration.GetSection(TelemetryOptions.SectionName).Get<TelemetryOptions>() ?? new TelemetryOptions();
        var configured = !string.IsNullOrWhiteSpace(options.OtlpEndpoint);
        var otlp = configured || !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(OtlpEnvironmentVariable));
        if (!options.Prometheus && !otlp)
        {
            return builder;
        }

        services.AddSingleton<AtelierGauges>();
        var otel = services.AddOpenTelemetry().WithMetrics(m =>
        {
            m.AddMeter(AtelierMeter.Name).AddAspNetCoreInstrumentation().AddHttpClientInstrumentation();
            if (options.Prometheus)
            {
                m.AddPrometheusExporter();
            }
        });
        if (otlp)
        {
            otel.WithTracing(t => t.AddAspNetCoreInstrumentation().AddHttpClientInstrumentation().AddEntityFrameworkCoreInstrumentation());
            // The configured endpoint over gRPC; else the standard OTEL_EXPORTER_OTLP_* variables (endpoint, protocol, headers).
            if (configured)
            {
                otel.UseOtlpExporter(OpenTelemetry.Exporter.OtlpExportProtocol.Grpc, new Uri(options.OtlpEndpoint!));
            }
            else
            {
                otel.UseOtlpExporter();
            }
        }

        return builder;
    }

    /// <summary>Maps <c>/metrics</c> when Prometheus is on (otherwise the route does not exist: 404).</summary>
    public static WebApplication MapMetrics(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<TelemetryOptions>>().Value;
        // Made (so its gauges exist) only where something exports them.
        _ = app.Services.GetService<AtelierGauges>();

        if (options.Prometheus)
        {
            app.MapPrometheusScrapingEndpoint("/metrics", meterProvider: null, configureBranchedPipeline: branch => branch.Use(async (http, next) =>
            {
                if (await AllowedAsync(http, options))
                {
                    await next(http);
                    return;
                }

                await ErrorResponses.WriteAsync(http, new AtelierException(ErrorCatalog.p_common_apitokenrequired, errCode: ErrCodes.MetricsCredential,
                    errMessage: "GET /metrics needs the platform admin key or the scrape token (Atelier:Telemetry:MetricsToken)"));
            }), optionsName: null).ExcludeFromDescription();
        }

        return app;
    }

    private static async Task<bool> AllowedAsync(HttpContext http, TelemetryOptions options)
    {
        var secret = AccessFilters.BearerOf(http.Request);
        if (string.IsNullOrEmpty(secret))
        {
            return false;
        }

        if (options.MetricsToken is { Length: > 0 } token
            && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(secret)), SHA256.HashData(Encoding.UTF8.GetBytes(token))))
        {
            return true;
        }

        try
        {
            var caller = await http.RequestServices.GetRequiredService<Authenticator>().AuthenticateAsync(secret, http.RequestAborted);
            return caller.IsPlatformAdmin;
        }
        catch (AtelierException)
        {
            return false;
        }
    }
}
