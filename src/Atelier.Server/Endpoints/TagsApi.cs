using Atelier.Contracts;
using Atelier.Contracts.Models;
using Atelier.Core.Models;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The tag dictionary: the platform's tags and the tenant's own.</summary>
public static class TagsApi
{
    public static IEndpointRouteBuilder MapTagsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/tags", ListTags).WithTags("Tags").WithName("ListTags").RequireAccess(Access.TenantMember);
        routes.MapPost("/api/v1/tags", CreateTag).WithTags("Tags").WithName("CreateTag").RequireAccess(Access.TenantAdmin);
        routes.MapPost("/api/v1/platform/tags", CreatePlatformTag).WithTags("Tags").WithName("CreatePlatformTag").RequireAccess(Access.Platform);
        return routes;
    }

    public static async Task<Ok<ApiResponse<IReadOnlyList<TagDto>>>> ListTags(TagService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListTagsAsync(ct));

    public static async Task<Created<ApiResponse<TagDto>>> CreateTag(CreateTagRequest request, TagService svc, HttpContext http, CancellationToken ct) =>
        Reply.Created(http, "/api/v1/tags", await svc.CreateTagAsync(request, platform: false, ct));

    public static async Task<Created<ApiResponse<TagDto>>> CreatePlatformTag(CreateTagRequest request, TagService svc, HttpContext http, CancellationToken ct) =>
        Reply.Created(http, "/api/v1/tags", await svc.CreateTagAsync(request, platform: true, ct));
}
