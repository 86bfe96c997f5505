using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Models;
using Atelier.Core.Models;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Endpoints;

/// <summary>Uploads of model files: ask for one, send the bytes (with the upload's own secret), complete it.</summary>
public static class UploadsApi
{
    public static IEndpointRouteBuilder MapUploadsApi(this IEndpointRouteBuilder routes)
    {
        var uploads = routes.MapGroup("/api/v1/uploads").WithTags("Uploads");
        uploads.MapPost("/", CreateUpload).WithName("CreateUpload").RequireAccess(Access.TenantAdmin);
        uploads.MapGet("/{uploadId}", GetUpload).WithName("GetUpload").RequireAccess(Access.TenantAdmin);
        uploads.MapPost("/{uploadId}/complete", CompleteUpload).WithName("CompleteUpload").RequireAccess(Access.TenantAdmin);
        // The upload's own secret (in the header CreateUpload names) authenticates the bytes.
        uploads.MapPut("/{uploadId}/content", ReceiveUpload).WithName("PutUploadContent");
        return routes;
    }

    public static async Task<Created<ApiResponse<UploadDto>>> CreateUpload(CreateUploadRequest request, UploadService svc, HttpContext http, CancellationToken ct)
    {
        var upload = await svc.CreateAsync(request, $"{http.Request.Scheme}://{http.Request.Host}", ct);
        return Reply.Created(http, $"/api/v1/uploads/{upload.Id}", upload);
    }

    public static async Task<Ok<ApiResponse<UploadDto>>> GetUpload(string uploadId, UploadService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(uploadId, ct));

    /// <summary>Completes an upload sent to the object store: no body for one PUT; the parts with their ETags for an upload in parts.</summary>
    public static async Task<Ok<ApiResponse<UploadDto>>> CompleteUpload(string uploadId, UploadService svc, HttpContext http, CancellationToken ct,
        CompleteUploadRequest? request = null) =>
        Reply.Ok(http, await svc.CompleteAsync(uploadId, request?.Parts, ct));

    /// <summary>Streams the body to storage: the JSON body limit does not apply here, the model file limit does.</summary>
    /// <remarks>
    /// The secret comes in <c>X-Upload-Secret</c> (or as <c>Authorization: Bearer atu_…</c>); in the query string it is
    /// refused before anything is read, so that no secret is ever kept in an access log as a working credential.
    /// </remarks>
    public static async Task<Ok<ApiResponse<UploadDto>>> ReceiveUpload(string uploadId, UploadService svc, IOptions<ModelsOptions> options,
        HttpContext http, CancellationToken ct)
    {
        if (http.Request.Query.ContainsKey("secret"))
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid,
                new Dictionary<string, string> { ["Input"] = $"secret: send it in the {UploadService.SecretHeader} header, never in the URL" }, errCode: ErrCodes.SecretInQuery);
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = options.Value.MaxFileBytes;
        }

        var secret = http.Request.Headers[UploadService.SecretHeader].ToString() is { Length: > 0 } header ? header : AccessFilters.BearerOf(http.Request);
        return Reply.Ok(http, await svc.ReceiveAsync(uploadId, secret, http.Request.Body, ct));
    }
}
