using Atelier.Contracts;
using Atelier.Contracts.Platform;
using Atelier.Core.Coordination;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The replica that answers, for the platform admin: its id, whether it leads, its term and since when (docs/replicas.md).</summary>
public static class ReplicaApi
{
    public static IEndpointRouteBuilder MapReplicaApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/platform/replica", GetReplica).WithTags("Platform").WithName("GetReplica").RequireAccess(Access.Platform);
        return routes;
    }

    public static Ok<ApiResponse<ReplicaDto>> GetReplica(Leadership leadership, HttpContext http) => Reply.Ok(http, leadership.Describe());
}
