using Atelier.Contracts.Errors;
using Atelier.Data;
using Atelier.Server.Errors;

namespace Atelier.Server.Endpoints;

/// <summary>Liveness (<c>/healthz</c>: the process answers) and readiness (<c>/readyz</c>: the database answers), in every environment.</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/healthz", Live).WithTags("Health").WithName("Healthz").ExcludeFromDescription();
        routes.MapGet("/readyz", Ready).WithTags("Health").WithName("Readyz").ExcludeFromDescription();
        return routes;
    }

    public static IResult Live() => TypedResults.Text("ok");

    public static async Task Ready(AtelierDb db, HttpContext http, CancellationToken ct)
    {
        if (await db.Database.CanConnectAsync(ct))
        {
            await http.Response.WriteAsync("ready", ct);
            return;
        }

        await ErrorResponses.WriteAsync(http, new AtelierException(ErrorCatalog.s_common_dbexecuteexception,
            errCode: "db_unreachable", errMessage: "the database does not answer", status: StatusCodes.Status503ServiceUnavailable));
    }
}
