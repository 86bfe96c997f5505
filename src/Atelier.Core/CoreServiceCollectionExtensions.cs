using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Core.Jobs;
using Atelier.Core.Models;
using Atelier.Core.Security;
using Atelier.Core.Sessions;
using Atelier.Core.Tenancy;
using Atelier.Data;
using Atelier.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Atelier.Core;

public static class CoreServiceCollectionExtensions
{
    /// <summary>
    /// Registers the product's rules: their options sections (each validated at start), one scoped service per feature,
    /// the request context and the auth cache. The default master key file lives in <paramref name="dataDirectory"/>.
    /// </summary>
    public static IServiceCollection AddAtelierCore(this IServiceCollection services, IConfiguration configuration, string dataDirectory)
    {
        // Core's own foundations: the host talks to Core, and Core to the database and the object store.
        services.AddAtelierData(configuration, dataDirectory);
        services.AddAtelierStorage(configuration, dataDirectory);
        services.AddValidatedSection<AuthOptions, AuthOptions.Validator>(configuration, AuthOptions.SectionName);
        services.AddValidatedSection<TenancyOptions, TenancyOptions.Validator>(configuration, TenancyOptions.SectionName);
        services.AddValidatedSection<SessionsOptions, SessionsOptions.Validator>(configuration, SessionsOptions.SectionName);
        services.AddValidatedSection<ModelsOptions, ModelsOptions.Validator>(configuration, ModelsOptions.SectionName);
        services.AddValidatedSection<Jobs.JobsOptions, Jobs.JobsOptions.Validator>(configuration, Jobs.JobsOptions.SectionName);
        services.AddValidatedSection<Jobs.GenerationOptions, Jobs.GenerationOptions.Validator>(configuration, Jobs.GenerationOptions.SectionName);
        services.AddValidatedSection<Images.ImagesOptions, Images.ImagesOptions.Validator>(configuration, Images.ImagesOptions.SectionName);
        services.AddValidatedSection<Security.SecurityOptions, Security.SecurityOptions.Validator>(configuration, Security.SecurityOptions.SectionName);
        services.AddValidatedSection<Security.UrlTestOptions, Security.UrlTestOptions.Validator>(configuration, Security.UrlTestOptions.SectionName);
        services.AddValidatedSection<Security.SafetyOptions, Security.SafetyOptions.Validator>(configuration, Security.SafetyOptions.SectionName);
        services.AddValidatedSection<Webhooks.WebhookOptions, Webhooks.WebhookOptions.Validator>(configuration, Webhooks.WebhookOptions.SectionName);
        services.AddValidatedSection<Functions.FunctionsOptions, Functions.FunctionsOptions.Validator>(configuration, Functions.FunctionsOptions.SectionName);
        services.AddValidatedSection<Agents.AgentsOptions, Agents.AgentsOptions.Validator>(configuration, Agents.AgentsOptions.SectionName);
        services.AddValidatedSection<Coordination.CoordinationOptions, Coordination.CoordinationOptions.Validator>(configuration, Coordination.CoordinationOptions.SectionName);
        services.AddValidatedSection<Usage.UsageOptions, Usage.UsageOptions.Validator>(configuration, Usage.UsageOptions.SectionName);

        // Read when first asked for (at start, before anything listens): a configured key file that is missing stops the start.
        services.AddSingleton(sp => Security.MasterKeys.Load(sp.GetRequiredService<IOptions<Security.SecurityOptions>>().Value, dataDirectory)(
            sp.GetRequiredService<TimeProvider>()));

        // Leadership first among the hosted services: it starts before, and stops after, the work that asks it who leads.
        services.AddSingleton<Coordination.Locks>();
        services.AddSingleton<Coordination.Leadership>();
        services.AddHostedService(sp => sp.GetRequiredService<Coordination.Leadership>());
        services.AddSingleton<AuthCache>();
        services.AddSingleton<Tenancy.TenantLanguages>();
        services.AddScoped<Tenancy.TenantLanguage>();
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
        services.AddScoped<TagService>();
        services.AddScoped<ModelService>();
        services.AddScoped<ModelVersionService>();
        services.AddScoped<CheckpointService>();
        services.AddScoped<Jobs.JobQueue>();
        services.AddScoped<Jobs.JobService>();
        services.AddScoped<Jobs.CallerOptionsService>();
        services.AddSingleton<Jobs.CallerOptionsCache>();
        services.AddScoped<Models.ModelResolver>();
        services.AddSingleton<Models.ResolutionCache>();
        services.AddSingleton<Models.NetworkCache>();
        services.AddSingleton<Jobs.AgentCache>();
        services.AddScoped<Jobs.EntitlementService>();
        services.AddSingleton<Security.UrlTester>();
        services.AddScoped<Security.ContentSafety>();
        services.AddSingleton<Security.SafetyPatterns>();
        services.AddScoped<Images.ImageService>();
        services.AddSingleton<Images.ImageUrlSigner>();
        services.AddSingleton<Images.ImageRetentionSweeper>();
        services.AddHostedService(sp => sp.GetRequiredService<Images.ImageRetentionSweeper>());
        services.AddScoped<Jobs.WorkerService>();
        services.AddScoped<Usage.UsageService>();
        services.AddScoped<Usage.LiveCounts>();
        services.AddScoped<Functions.RuntimeInstances>();
        services.AddSingleton<Usage.UsageRoller>();
        services.AddSingleton<Jobs.JobSignal>();
        services.AddSingleton<Models.BuiltinModels>();
        services.AddSingleton<Jobs.JobWatch>();
        services.AddSingleton<Jobs.JobHandoff>();
        services.AddSingleton<Jobs.JobNotifier>();
        services.AddHostedService(sp => sp.GetRequiredService<Jobs.JobNotifier>());
        services.AddSingleton<Jobs.WorkerRegistry>();
        services.AddSingleton<Jobs.HotModelKeys>();
        services.AddHostedService<Jobs.JobListener>();
        services.AddHostedService<Jobs.JobRescuer>();
        services.AddScoped<Webhooks.WebhookService>();
        services.AddSingleton<Jobs.IWebhookPolicy, Webhooks.WebhookPolicy>();
        services.AddScoped<Jobs.JobWebhooks>();
        services.AddSingleton<Webhooks.WebhookSecretBox>();
        services.AddSingleton<Webhooks.WebhookSigningKeys>();
        services.AddSingleton<WebhookSignal>();
        services.AddHostedService<Webhooks.WebhookRelay>();
        services.AddScoped<UploadService>();
        services.AddSingleton<DownloadSignal>();
        services.AddHostedService<DownloadWorker>();
        // Functions: the runtime backends themselves are registered by the host (each region names one).
        services.AddScoped<Functions.RuntimeRegions>();
        services.AddScoped<Functions.RuntimeCatalogService>();
        services.AddScoped<Functions.FunctionDeployer>();
        services.AddScoped<Functions.FunctionManager>();
        services.AddScoped<Functions.FunctionFeatures>();
        services.AddScoped<Functions.FunctionRouting>();
        services.AddScoped<Functions.AsyncInvocations>();
        services.AddSingleton<Functions.AsyncSignal>();
        services.AddSingleton<Functions.DomainDirectory>();
        services.AddSingleton<Functions.FunctionRouteCache>();
        services.AddSingleton<Functions.FunctionReconciler>();
        services.AddHostedService(sp => sp.GetRequiredService<Functions.FunctionReconciler>());
        services.AddSingleton<Functions.AsyncInvocationRunner>();
        services.AddHostedService(sp => sp.GetRequiredService<Functions.AsyncInvocationRunner>());

        // Agents, pools and units: the autoscaler runs in the leader.
        services.AddScoped<Agents.PoolService>();
        services.AddScoped<Agents.AgentService>();
        services.AddScoped<Agents.UnitService>();
        services.AddScoped<Agents.AgentWorkloads>();
        services.AddSingleton<Agents.WorkerServerAddress>();
        services.AddScoped<Agents.CapacityLocks>();
        services.AddSingleton<Agents.AutoscaleSignal>();
        services.AddSingleton<Agents.Autoscaler>();
        return services;
    }

    /// <summary>Binds one configuration section to its options, checked by <typeparamref name="TValidator"/> when the host starts.</summary>
    public static void AddValidatedSection<TOptions, TValidator>(this IServiceCollection services, IConfiguration configuration, string sectionName)
        where TOptions : class
        where TValidator : class, IValidateOptions<TOptions>
    {
        services.AddOptions<TOptions>().Bind(configuration.GetSection(sectionName)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<TOptions>, TValidator>());
    }
}
