using Atelier.Contracts.Errors;
using Atelier.Core.Platform;
using Atelier.Server.Errors;
using Atelier.Storage;

namespace Atelier.Server.Endpoints;

/// <summary>
/// Liveness (<c>/healthz</c>: the process answers) and readiness (<c>/readyz</c>: the database answers and the storage
/// disk has room), in every environment.
/// </summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/healthz", Live).WithTags("Health").WithName("Healthz").ExcludeFromDescription();
        routes.MapGet("/readyz", Ready).WithTags("Health").WithName("Readyz").ExcludeFromDescription();
        return routes;
    }

    public static IResult Live() => TypedResults.Text("ok");

    public static async Task Ready(HealthProbe health, StorageOptions storage, HttpContext http, CancellationToken ct)
    {
        if (!await health.DatabaseAnswersAsync(ct))
        {
            await ErrorResponses.WriteAsync(http, new AtelierException(ErrorCatalog.s_common_dbexecuteexception,
                errCode: ErrCodes.DbUnreachable, errMessage: "the database does not answer", status: StatusCodes.Status503ServiceUnavailable));
            return;
        }

        if (health.StorageIsLow(out var free))
        {
            await ErrorResponses.WriteAsync(http, new AtelierException(ErrorCatalog.s_common_lockfail, errCode: ErrCodes.DiskFull,
                errMessage: $"the storage disk has {free} bytes free, under the {health.MinFreeBytes} it must keep")
            {
                RetryAfterSeconds = Math.Max(1, storage.FullRetryAfterSeconds),
            });
            return;
        }

        await http.Response.WriteAsync("ready", ct);
    }
}
