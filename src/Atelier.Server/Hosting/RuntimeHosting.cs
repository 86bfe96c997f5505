using Atelier.Core.Functions;
using Atelier.Runtime;
using Atelier.Runtime.Kubernetes;
using Atelier.Runtime.Local;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Hosting;

/// <summary>
/// The runtime in the host: both backends (<c>local</c> child processes, <c>kubernetes</c> Knative objects), chosen per
/// region by name; the router's forwarder; custom domains' certificates by TLS server name; and the local backend's
/// start (stale instances of a crashed server are stopped) and stop (no instance outlives the server).
/// </summary>
public static class RuntimeHosting
{
    public static IServiceCollection AddAtelierRuntime(this IServiceCollection services, string dataDirectory)
    {
        services.AddHttpForwarder();
        services.AddSingleton<FunctionForwarder>();
        services.AddSingleton(sp =>
        {
            var functions = sp.GetRequiredService<IOptions<FunctionsOptions>>().Value;
            return new LocalBackend(new LocalRuntimeOptions
            {
                StateDirectory = Path.GetFullPath(Path.Combine(dataDirectory, "runtime")),
                StartTimeout = TimeSpan.FromSeconds(functions.LocalStartTimeoutSeconds),
                StopGrace = TimeSpan.FromSeconds(functions.LocalStopGraceSeconds),
                IdleCheckInterval = TimeSpan.FromSeconds(functions.LocalIdleCheckSeconds),
            }, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<LocalBackend>>());
        });
        services.AddSingleton<IRuntimeBackend>(sp => sp.GetRequiredService<LocalBackend>());
        services.AddSingleton<KubernetesBackend>();
        services.AddSingleton<IRuntimeBackend>(sp => sp.GetRequiredService<KubernetesBackend>());
        services.AddHostedService<LocalRuntimeLifetime>();
        services.AddOptions<KestrelServerOptions>().Configure<DomainDirectory>((k, domains) =>
            k.ConfigureHttpsDefaults(https => https.ServerCertificateSelector = (_, name) => domains.Certificate(name)));
        return services;
    }

    /// <summary>Stops what a crashed server left running before functions are applied again, and every instance when the server stops.</summary>
    private sealed class LocalRuntimeLifetime(LocalBackend local) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            await local.CleanStaleAsync(cancellationToken);
            local.StartGuardian();
        }

        public async Task StopAsync(CancellationToken cancellationToken) => await local.DisposeAsync();
    }
}
