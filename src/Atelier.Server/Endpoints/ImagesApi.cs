using Atelier.Contracts;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Core.Images;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The generated-images library: every image a job produced (any credential of the tenant; a session sees its own).</summary>
public static class ImagesApi
{
    public static IEndpointRouteBuilder MapImagesApi(this IEndpointRouteBuilder routes)
    {
        var images = routes.MapGroup("/api/v1/images").WithTags("Images");
        images.MapGet("/", List).WithName("ListImages").RequireAccess(Access.TenantOrSession);
        images.MapGet("/{imageId}", Get).WithName("GetImage").RequireAccess(Access.TenantOrSession);
        images.MapPost("/delete", Delete).WithName("DeleteImages").RequireAccess(Access.TenantOrSession);
        // The signed URL is its own credential: no Authorization header (so an <img src> works).
        images.MapGet("/{imageId}/content", Content).WithName("ImageContent");
        return routes;
    }

    public static async Task<Ok<ApiResponse<Page<GeneratedImageDto>>>> List(string? jobId, string? appId, string? sessionId, string? modelVersionId,
        DateTime? from, DateTime? to, int? pageNumber, int? pageSize, ImageService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(jobId, appId, sessionId, modelVersionId, from, to, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<GeneratedImageDto>>> Get(string imageId, ImageService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(imageId, ct));

    public static async Task<Ok<ApiResponse<DeleteImagesResult>>> Delete(DeleteImagesRequest request, ImageService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.DeleteAsync(request, ct));

    public static async Task<IResult> Content(string imageId, long? expires, string? kid, string? sig, ImageService svc, CancellationToken ct) =>
        Results.Stream(await svc.OpenSignedAsync(imageId, expires ?? 0, kid, sig, ct), "image/png");
}
