using Atelier.Contracts.Errors;
using Atelier.Core.Platform;
using Atelier.Server.Errors;
using Atelier.Storage;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Atelier.Server.Hosting;

/// <summary>
/// Readiness on the framework's health checks: <c>database</c> (it answers), <c>storage</c> (the object store answers a
/// lookup) and <c>disk</c> (the storage disk keeps <c>Atelier:Storage:MinFreeBytes</c>). <c>/healthz</c> runs none (the
/// process answers); <c>/readyz</c> runs the three and answers <c>ready</c>, or the first failure in the envelope, 503.
/// </summary>
public static class AtelierHealthChecks
{
    private const string Ready = "ready";

    public static IServiceCollection AddAtelierHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<DatabaseCheck>("database", tags: [Ready])
            .AddCheck<StorageCheck>("storage", tags: [Ready])
            .AddCheck<DiskCheck>("disk", tags: [Ready]);
        return services;
    }

    public static IEndpointRouteBuilder MapAtelierHealthChecks(this IEndpointRouteBuilder routes)
    {
        routes.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = (http, _) => http.Response.WriteAsync("ok") })
            .WithName("Healthz").ExcludeFromDescription();
        routes.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = c => c.Tags.Contains(Ready), ResponseWriter = WriteReadyAsync })
            .WithName("Readyz").ExcludeFromDescription();
        return routes;
    }

    private static Task WriteReadyAsync(HttpContext http, HealthReport report)
    {
        if (report.Status == HealthStatus.Healthy)
        {
            return http.Response.WriteAsync("ready");
        }

        var failed = report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy).ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
        var storage = http.RequestServices.GetRequiredService<StorageOptions>();
        AtelierException error;
        if (failed.ContainsKey("database"))
        {
            error = new AtelierException(ErrorCatalog.s_common_dbexecuteexception, errCode: ErrCodes.DbUnreachable, errMessage: "the database does not answer",
                status: StatusCodes.Status503ServiceUnavailable);
        }
        else if (failed.TryGetValue("disk", out var disk))
        {
            error = new AtelierException(ErrorCatalog.s_common_lockfail, errCode: ErrCodes.DiskFull, errMessage: disk.Description)
            {
                RetryAfterSeconds = Math.Max(1, storage.FullRetryAfterSeconds),
            };
        }
        else
        {
            error = new AtelierException(ErrorCatalog.s_common_lockfail, errCode: ErrCodes.StorageUnreachable,
                errMessage: "the object store does not answer");
        }

        return ErrorResponses.WriteAsync(http, error);
    }

    private sealed class DatabaseCheck(HealthProbe probe) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            await probe.DatabaseAnswersAsync(cancellationToken) ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("the database does not answer");
    }

    private sealed class StorageCheck(HealthProbe probe) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            await probe.StorageAnswersAsync(cancellationToken) ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("the object store does not answer");
    }

    private sealed class DiskCheck(HealthProbe probe) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(probe.StorageIsLow(out var free)
                ? HealthCheckResult.Unhealthy($"the storage disk has {free} bytes free, under the {probe.MinFreeBytes} it must keep")
                : HealthCheckResult.Healthy());
    }
}
