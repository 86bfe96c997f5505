using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Core;
using Atelier.Core.Identity;
using Atelier.Core.Models;
using Atelier.Core.Platform;
using Atelier.Core.Sessions;
using Atelier.Core.Tenancy;
using Atelier.Data;
using Atelier.Server.Endpoints;
using Atelier.Server.Errors;
using Atelier.Server.Hosting;
using Atelier.Storage;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Scalar.AspNetCore;

namespace Atelier.Server;

/// <summary>Builds and runs the HTTP host: the table of contents of the server.</summary>
public static class AtelierServer
{
    /// <param name="args">Command-line arguments; <c>--Atelier:Section:Key=value</c> sets configuration.</param>
    /// <param name="configure">A last word on the services before the host is built (tests swap the clock here).</param>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddAtelierServer();
        configure?.Invoke(builder);
        var app = builder.Build();
        app.UseAtelierPipeline();
        app.MapAtelierApi();
        app.PrepareDatabase();
        return app;
    }

    public static WebApplicationBuilder AddAtelierServer(this WebApplicationBuilder builder)
    {
        var config = builder.Configuration;
        var server = Bind<ServerOptions>(config, ServerOptions.Section);
        Directory.CreateDirectory(server.DataDirectory);

        var database = Bind<DatabaseOptions>(config, DatabaseOptions.Section);
        database.ConnectionString ??= $"Data Source={Path.Combine(server.DataDirectory, "atelier.db")}";

        builder.Logging.ClearProviders();
        builder.Logging.AddJsonConsole(o =>
        {
            o.IncludeScopes = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        });

        builder.WebHost.UseUrls(server.Urls);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = server.MaxJsonBodyBytes;
        });

        builder.Services.AddSingleton(server);
        builder.Services.AddSingleton(Bind<EmbeddedOptions>(config, EmbeddedOptions.Section));
        builder.Services.AddHostedService<LocalWorkerLauncher>();
        builder.Services.AddOptions<AuthOptions>().Bind(config.GetSection(AuthOptions.Section));
        builder.Services.AddOptions<TenancyOptions>().Bind(config.GetSection(TenancyOptions.Section));
        builder.Services.AddOptions<SessionsOptions>().Bind(config.GetSection(SessionsOptions.Section))
            .Validate(o => o.SweepIntervalSeconds is >= 1 and <= 3600 && o.MaxSessionSeconds >= 60 && o.SweepBatchSize is >= 1 and <= 10_000,
                "Atelier:Sessions: SweepIntervalSeconds must be 1-3600, MaxSessionSeconds at least 60 and SweepBatchSize 1-10000").ValidateOnStart();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddAtelierData(database);
        builder.Services.AddAtelierStorage(Bind<StorageOptions>(config, StorageOptions.Section), server.DataDirectory);
        builder.Services.AddOptions<ModelsOptions>().Bind(config.GetSection(ModelsOptions.Section));
        builder.Services.AddOptions<Atelier.Core.Jobs.JobsOptions>().Bind(config.GetSection(Atelier.Core.Jobs.JobsOptions.Section));
        builder.Services.AddOptions<Atelier.Core.Jobs.GenerationLimits>().Bind(config.GetSection(Atelier.Core.Jobs.GenerationLimits.Section));
        builder.Services.AddOptions<Atelier.Core.Security.UrlTestOptions>().Bind(config.GetSection(Atelier.Core.Security.UrlTestOptions.Section));
        builder.Services.AddOptions<Atelier.Core.Security.SafetyOptions>().Bind(config.GetSection(Atelier.Core.Security.SafetyOptions.Section));
        builder.Services.AddOptions<Atelier.Core.Images.ImagesOptions>().Bind(config.GetSection(Atelier.Core.Images.ImagesOptions.Section))
            .Validate(o => o.UrlLifetimeSeconds is >= 1 and <= Atelier.Core.Images.ImagesOptions.MaxUrlLifetimeSeconds,
                "Atelier:Images:UrlLifetimeSeconds must be 1-604800 (a signed image URL works at most 7 days)").ValidateOnStart();
        // Read now: a configured key file that is missing stops the start here, before anything listens.
        var keys = Atelier.Core.Security.MasterKeys.Load(Bind<Atelier.Core.Security.SecurityOptions>(config, Atelier.Core.Security.SecurityOptions.Section), server.DataDirectory);
        builder.Services.AddSingleton(sp => keys(sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddOptions<Atelier.Core.Webhooks.WebhookOptions>().Bind(config.GetSection(Atelier.Core.Webhooks.WebhookOptions.Section))
            .Validate(o => o.Schedule.All(s => s >= 0) && o.TimeoutSeconds is >= 1 and <= 300 && o.Jitter is >= 0 and < 1,
                "Atelier:Webhooks: RetryScheduleSeconds must not be negative, TimeoutSeconds must be 1-300 and Jitter 0 to below 1").ValidateOnStart();
        builder.Services.AddOptions<Auth.RateLimitOptions>().Bind(config.GetSection(Auth.RateLimitOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<Auth.RateLimitOptions>, Auth.RateLimitOptions.Validator>();
        builder.Services.AddSingleton<Auth.RateLimits>();
        builder.Services.AddAtelierCore();
        builder.Services.Configure<JsonOptions>(o => AtelierJson.Configure(o.SerializerOptions));
        // Binding failures must reach the exception handler as exceptions, in every environment.
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddExceptionHandler<EnvelopeExceptionHandler>();
        builder.Services.AddProblemDetails();
        builder.Services.AddOpenApi();
        return builder;
    }

    public static WebApplication UseAtelierPipeline(this WebApplication app)
    {
        app.UseMiddleware<RequestIdMiddleware>();
        app.UseExceptionHandler(new ExceptionHandlerOptions { SuppressDiagnosticsCallback = _ => true });
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
        app.MapHealthApi();
        app.MapPlatformApi();
        app.MapTenantApi();
        app.MapAppsApi();
        app.MapRolesApi();
        app.MapSessionsApi();
        app.MapModelsApi();
        app.MapJobsApi();
        app.MapWorkerApi();
        app.MapPredictApi();
        app.MapSdApi();
        app.MapImagesApi();
        app.MapWebhooksApi();
        return app;
    }

    /// <summary>Readies the database (migrations, the provider's checks, the first admin key, master keys) and the embedded setup.</summary>
    public static void PrepareDatabase(this WebApplication app)
    {
        using var scope = app.Services.CreateScope();
        var sp = scope.ServiceProvider;
        var logger = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Atelier.Server");
        var report = sp.GetRequiredService<PlatformStartup>().PrepareAsync(CancellationToken.None).GetAwaiter().GetResult();
        Log.DatabaseReady(logger, report.Provider);
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

        var server = sp.GetRequiredService<ServerOptions>();
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
                Console.Out.WriteLine($"  curl -s {server.Urls.Split(';')[0]}/sdapi/v1/txt2img -H 'Authorization: Bearer {demo}' -H 'Content-Type: application/json' -H 'Accept: image/png' -d '{{\"prompt\":\"a lighthouse at dusk\",\"steps\":12}}' -o out.png");
                Console.Out.Flush();
            }
        }
    }

    /// <summary>Binds and validates an options section at start, reporting every problem at once.</summary>
    private static T Bind<T>(ConfigurationManager config, string section) where T : new()
    {
        var value = new T();
        config.GetSection(section).Bind(value);
        var results = new List<System.ComponentModel.DataAnnotations.ValidationResult>();
        if (!System.ComponentModel.DataAnnotations.Validator.TryValidateObject(value, new(value), results, validateAllProperties: true))
        {
            throw new InvalidOperationException($"Configuration section {section} is invalid: " +
                string.Join("; ", results.Select(r => r.ErrorMessage)));
        }

        return value;
    }
}
