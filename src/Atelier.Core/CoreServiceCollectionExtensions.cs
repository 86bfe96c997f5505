using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Core.Models;
using Atelier.Core.Sessions;
using Atelier.Core.Tenancy;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Core;

public static class CoreServiceCollectionExtensions
{
    /// <summary>Registers the product's rules: one scoped service per feature, the request context and the auth cache.</summary>
    public static IServiceCollection AddAtelierCore(this IServiceCollection services)
    {
        services.AddSingleton<AuthCache>();
        services.AddSingleton(typeof(ShortCache<>));
        services.AddScoped<RequestContext>();
        services.AddScoped<Platform.PlatformStartup>();
        services.AddScoped<Platform.HealthProbe>();
        services.AddScoped<Platform.EmbeddedSetup>();
        services.AddScoped<Authenticator>();
        services.AddScoped<TenancyService>();
        services.AddScoped<IdentityService>();
        services.AddScoped<TokenService>();
        services.AddScoped<SessionService>();
        services.AddScoped<ResourceConfigService>();
        services.AddSingleton<SessionSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<SessionSweeper>());
        services.AddScoped<ModelService>();
        services.AddScoped<Jobs.JobQueue>();
        services.AddScoped<Jobs.JobService>();
        services.AddScoped<Jobs.ModelResolver>();
        services.AddSingleton<Jobs.ResolutionCache>();
        services.AddScoped<Jobs.EntitlementService>();
        services.AddSingleton<Security.UrlTester>();
        services.AddScoped<Security.ContentSafety>();
        services.AddSingleton<Security.SafetyPatterns>();
        services.AddScoped<Images.ImageService>();
        services.AddSingleton<Images.ImageUrlSigner>();
        services.AddSingleton<Images.ImageRetentionSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<Images.ImageRetentionSweeper>());
        services.AddScoped<Jobs.WorkerService>();
        services.AddSingleton<Jobs.JobSignal>();
        services.AddSingleton<Models.BuiltinModels>();
        services.AddSingleton<Jobs.JobWatch>();
        services.AddSingleton<Jobs.JobNotifier>();
        services.AddSingleton<Jobs.WorkerRegistry>();
        services.AddHostedService<Jobs.PgJobListener>();
        services.AddHostedService<Jobs.JobRescuer>();
        services.AddScoped<Webhooks.WebhookService>();
        services.AddSingleton<Webhooks.WebhookSecretBox>();
        services.AddSingleton<Webhooks.WebhookSignal>();
        services.AddHostedService<Webhooks.WebhookRelay>();
        services.AddScoped<UploadService>();
        services.AddSingleton<DownloadSignal>();
        services.AddHostedService<DownloadWorker>();
        return services;
    }
}
