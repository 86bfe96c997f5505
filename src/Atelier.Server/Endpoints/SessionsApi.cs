using Atelier.Contracts;
using Atelier.Contracts.Sessions;
using Atelier.Core.Common;
using Atelier.Core.Sessions;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>End users' sessions (opened by an app's token) and the session check.</summary>
public static class SessionsApi
{
    public static IEndpointRouteBuilder MapSessionsApi(this IEndpointRouteBuilder routes)
    {
        // The credential in the body is the proof here; it is checked like a secret (checksum, hash, constant time).
        routes.MapPost("/api/v1/sessions/check", CheckSession).WithTags("Sessions").WithName("CheckSession");
        routes.MapGet("/api/v1/session", CurrentSession).WithTags("Sessions").WithName("CurrentSession").RequireAccess(Access.Session);

        var sessions = routes.MapGroup("/api/v1/sessions").WithTags("Sessions").RequireAccess(Access.TenantMember);
        sessions.MapPost("/", CreateSession).WithName("CreateSession");
        sessions.MapGet("/", ListSessions).WithName("ListSessions");
        sessions.MapGet("/{sessionId}", GetSession).WithName("GetSession");
        sessions.MapPost("/{sessionId}/refresh", RefreshSession).WithName("RefreshSession");
        sessions.MapPost("/{sessionId}/end", EndSession).WithName("EndSession");
        return routes;
    }

    public static async Task<Created<ApiResponse<CreatedSessionDto>>> CreateSession(CreateSessionRequest request, SessionService svc, HttpContext http, CancellationToken ct)
    {
        var created = await svc.CreateAsync(request, $"{http.Request.Scheme}://{http.Request.Host}", ct);
        return Reply.Created(http, $"/api/v1/sessions/{created.Session.Id}", created);
    }

    public static async Task<Ok<ApiResponse<Page<SessionDto>>>> ListSessions(string? appId, string? tokenId, string? state, int? pageNumber, int? pageSize,
        SessionService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(appId, tokenId, state, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<SessionDto>>> GetSession(string sessionId, SessionService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(sessionId, ct));

    public static async Task<Ok<ApiResponse<SessionDto>>> RefreshSession(string sessionId, RefreshSessionRequest request, SessionService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.RefreshAsync(sessionId, request, ct));

    public static async Task<Ok<ApiResponse<SessionDto>>> EndSession(string sessionId, SessionService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.EndAsync(sessionId, ct));

    /// <summary>
    /// No bearer credential here, so the caller's address is what is limited: each check of a well-formed session
    /// credential (one that costs a lookup) counts; junk is refused by its checksum alone.
    /// </summary>
    public static async Task<Ok<ApiResponse<SessionCheckDto>>> CheckSession(CheckSessionRequest request, SessionService svc, RateLimits limits, HttpContext http, CancellationToken ct)
    {
        if (Atelier.Core.Security.Secrets.IsWellFormed(request.Credential, Atelier.Core.Security.Secrets.SessionPrefix))
        {
            limits.TakeSessionCheck(http.Connection.RemoteIpAddress);
        }

        return Reply.Ok(http, await svc.CheckAsync(request, ct));
    }

    public static async Task<Ok<ApiResponse<SessionCheckDto>>> CurrentSession(SessionService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.CurrentAsync(ct));
}
