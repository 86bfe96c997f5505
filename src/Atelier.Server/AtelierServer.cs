using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Core;
using Atelier.Core.Identity;
using Atelier.Core.Models;
using Atelier.Core.Platform;
using Atelier.Core.Sessions;
using Atelier.Core.Tenancy;
using Atelier.Server.Endpoints;
using Atelier.Server.Errors;
using Atelier.Server.Hosting;
using Atelier.Server.WebConsole;
using Atelier.Storage;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Scalar.AspNetCore;

namespace Atelier.Server;

/// <summary>Builds and runs the HTTP host: the table of contents of the server.</summary>
public static class AtelierServer
{
    /// <summary>The exit code of <c>atelier serve</c> when its configuration is invalid (sysexits EX_CONFIG).</summary>
    public const int InvalidConfigurationExitCode = 78;

    /// <summary>
    /// Builds and runs the server until it stops. An invalid configuration stops it before anything starts: every
    /// problem is written to standard error, one line each, and the exit code is <see cref="InvalidConfigurationExitCode"/>.
    /// </summary>
    public static int Run(string[] args)
    {
        WebApplication app;
        try
        {
            app = Build(args);
        }
        catch (InvalidConfigurationException e)
        {
            Console.Error.WriteLine(e.Message);
            return InvalidConfigurationExitCode;
        }

        app.Run();
        return 0;
    }

    /// <param name="args">Command-line arguments; <c>--Atelier:Section:Key=value</c> sets configuration.</param>
    /// <param name="configure">A last word on the services before the host is built (tests swap the clock here).</param>
    /// <exception cref="InvalidConfigurationException">The configuration is invalid; the exception lists every problem.</exception>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // Configuration files are read once, at start: a reload watcher on the content root watches every folder under
        // it, and the data folder (by default ./data) is under it, so every database write and stored file woke it (a
        // quarter of the queue's CPU per job in bench/jobs with the data there). `--hostBuilder:reloadConfigOnChange=true` turns it back on.
        var builder = WebApplication.CreateBuilder(["--hostBuilder:reloadConfigOnChange=false", .. args]);
        builder.AddAtelierServer();
        configure?.Invoke(builder);
        ConfigurationCheck.ThrowIfInvalid(builder.Configuration, builder.Services);
        var app = builder.Build();
        app.UseAtelierPipeline();
        app.MapAtelierApi();
        app.PrepareDatabase();
        return app;
    }

    public static WebApplicationBuilder AddAtelierServer(this WebApplicationBuilder builder)
    {
        var config = builder.Configuration;
        var services = builder.Services;
        // Needed before the container exists, and strings (which binding cannot refuse): where to listen, and the
        // folder the other projects default their files to. Both are validated with the rest at start.
        var urls = config[$"{ServerOptions.SectionName}:{nameof(ServerOptions.Urls)}"] ?? new ServerOptions().Urls;
        var dataDirectory = config[$"{ServerOptions.SectionName}:{nameof(ServerOptions.DataDirectory)}"] ?? new ServerOptions().DataDirectory;
        if (!string.IsNullOrWhiteSpace(dataDirectory))
        {
            Directory.CreateDirectory(dataDirectory);
        }

        builder.Logging.ClearProviders();
        builder.Logging.AddJsonConsole(o =>
        {
            o.IncludeScopes = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        });

        builder.WebHost.UseUrls(urls);
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<ServerOptions>>((k, server) =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = server.Value.MaxJsonBodyBytes;
        });

        services.AddValidatedSection<ServerOptions, ServerOptions.Validator>(config, ServerOptions.SectionName);
        services.AddValidatedSection<EmbeddedOptions, EmbeddedOptions.Validator>(config, EmbeddedOptions.SectionName);
        services.AddValidatedSection<Auth.RateLimitOptions, Auth.RateLimitOptions.Validator>(config, Auth.RateLimitOptions.SectionName);
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<ServerOptions>>().Value);
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<EmbeddedOptions>>().Value);
        services.AddSingleton(TimeProvider.System);
        // Under systemd (Type=notify): readiness and stop are told to systemd, logs lose their colours. Elsewhere nothing.
        services.AddSystemd();

        services.AddAtelierCore(config, dataDirectory);

        services.AddHostedService<LocalWorkerLauncher>();
        services.AddHostedService<AutoscalerHost>();
        services.AddHostedService<Atelier.Core.Functions.StudioReaper>();
        services.AddHostedService<UsageRollerHost>();
        services.AddAtelierRuntime(dataDirectory);
        services.AddSingleton<Auth.RateLimits>();
        services.Configure<JsonOptions>(o => AtelierJson.Configure(o.SerializerOptions));
        // Binding failures must reach the exception handler as exceptions, in every environment.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddExceptionHandler<EnvelopeExceptionHandler>();
        services.AddProblemDetails();
        services.AddOpenApi();
        services.AddAtelierConsole();
        services.AddAtelierHealthChecks();
        builder.AddAtelierTelemetry();
        return builder;
    }

    public static WebApplication UseAtelierPipeline(this WebApplication app)
    {
        // First: everything after (links, rate limits by address, custom domains) sees the public scheme, host and client.
        if (app.Services.GetRequiredService<ServerOptions>().ForwardedHeaders is { Enabled: true } forwarded)
        {
            app.UseForwardedHeaders(forwarded.ToOptions());
        }

        app.UseMiddleware<RequestIdMiddleware>();
        app.UseExceptionHandler(new ExceptionHandlerOptions { SuppressDiagnosticsCallback = _ => true });
        // A request for a mounted custom domain goes to its function, whatever its path.
        app.UseMiddleware<CustomDomainRouting>();
        // A route that matched nothing (404, 405, 415 …) still answers in the envelope.
        app.UseStatusCodePages(async sc =>
        {
            var http = sc.HttpContext;
            if (http.Response.HasStarted || http.Response.ContentLength > 0)
            {
                return;
            }

            var status = http.Response.StatusCode;
            var (what, cause) = status switch
            {
                404 => ($"route: no route {http.Request.Path}", ErrCodes.NoRoute),
                405 => ($"method: {http.Request.Method} is not allowed on {http.Request.Path}", ErrCodes.MethodNotAllowed),
                413 => ($"body: larger than {http.RequestServices.GetRequiredService<ServerOptions>().MaxJsonBodyBytes} bytes", ErrCodes.BodyTooLarge),
                415 => ("body: the content type must be application/json", ErrCodes.UnsupportedMediaType),
                _ => ($"request: answered {status}", ErrCodes.HttpStatus),
            };
            await ErrorResponses.WriteAsync(http, new AtelierException(ErrorCatalog.p_common_inputinvalid,
                new Dictionary<string, string> { ["Input"] = what }, errCode: cause, status: status));
        });
        return app;
    }

    public static WebApplication MapAtelierApi(this WebApplication app)
    {
        app.MapOpenApi();
        app.MapScalarApiReference();
        app.MapAtelierHealthChecks();
        app.MapMetrics();
        Studio.StudioApi.MapStudio(app);
        app.MapAccountsApi();
        app.MapTenantsApi();
        app.MapAuditApi();
        app.MapReplicaApi();
        app.MapTenantApi();
        app.MapOperatorsApi();
        app.MapAppsApi();
        app.MapSafetyRulesApi();
        app.MapUrlTestsApi();
        app.MapTokensApi();
        app.MapRolesApi();
        app.MapSessionsApi();
        app.MapResourceConfigsApi();
        app.MapTagsApi();
        app.MapModelsApi();
        app.MapModelVersionsApi();
        app.MapUploadsApi();
        app.MapCheckpointApi();
        app.MapAgentsApi();
        app.MapJobsApi();
        app.MapEntitlementsApi();
        app.MapWorkerKeysApi();
        app.MapWorkerApi();
        app.MapPredictApi();
        app.MapSdApi();
        app.MapImagesApi();
        app.MapAppWebhooksApi();
        app.MapWebhookDeliveriesApi();
        app.MapUsageApi();
        app.MapRuntimeCatalogApi();
        app.MapFunctionsApi();
        app.MapPoolsApi();
        app.MapFunctionRouter();
        app.MapAtelierConsole();
        return app;
    }

    /// <summary>Readies the database (migrations, the provider's checks, the first admin key, master keys) and the embedded setup.</summary>
    public static void PrepareDatabase(this WebApplication app)
    {
        using var scope = app.Services.CreateScope();
        var sp = scope.ServiceProvider;
        var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Atelier.Server");
        var server = sp.GetRequiredService<ServerOptions>();
        var report = sp.GetRequiredService<PlatformStartup>().PrepareAsync(server.DataDirectory, CancellationToken.None).GetAwaiter().GetResult();
        Log.DatabaseReady(logger, report.Provider);
        if (report.UnknownBackends.Count > 0)
        {
            var known = string.Join(", ", sp.GetRequiredService<Core.Functions.RuntimeRegions>().BackendNames.Order(StringComparer.Ordinal));
            throw new InvalidConfigurationException([.. report.UnknownBackends.Select(r => $"Region {r}: no such runtime backend; known: {known}")]);
        }

        if (report.GeneratedAdminKey is not null)
        {
            Console.Out.WriteLine($"Platform admin key (shown once, keep it safe): {report.GeneratedAdminKey}");
            Console.Out.Flush();
            Log.AdminKeyGenerated(logger);
        }

        Log.MasterKeyReady(logger, report.KeySource, report.KeyId, report.Resealed);
        if (report.KeyCreated)
        {
            Log.MasterKeyCreated(logger, report.KeySource);
        }

        if (report.Unreadable > 0)
        {
            Log.SecretsUnreadable(logger, report.Unreadable);
        }

        var embedded = sp.GetRequiredService<EmbeddedSetup>();
        try
        {
            embedded.RegisterDemoModelAsync(Engine.Onnx.DemoModel.Ensure(Path.Combine(server.DataDirectory, "models")), CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (IOException e) when (StorageSpace.IsDiskFull(e))
        {
            // A server that starts on a full disk still starts (and says it is not ready), so the operator can see why.
            Log.DemoModelNotStored(logger, e.Message);
        }

        if (sp.GetRequiredService<EmbeddedOptions>().DemoTenant)
        {
            var demo = embedded.EnsureDemoTenantAsync(CancellationToken.None).GetAwaiter().GetResult();
            if (demo is not null)
            {
                Console.Out.WriteLine($"Demo tenant ready. Its API token (shown once, keep it safe): {demo}");
                Console.Out.WriteLine($"  curl -s {server.Urls.Split(';')[0]}/sdapi/v1/txt2img -H 'Authorization: Bearer {demo}' -H 'Content-Type: application/json' -H 'Accept: image/png' -d '{{\"prompt\":\"a white lighthouse at dusk\",\"steps\":12}}' -o out.png");
                Console.Out.Flush();
            }
        }
    }
}
