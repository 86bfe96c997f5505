using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Images;

/// <summary>The generated-images library: list with filters, get with a signed URL, the bytes by that URL, delete in batches.</summary>
public sealed class ImageService(AtelierDb db, RequestContext ctx, IObjectStore store, ImageUrlSigner signer, IOptions<ImagesOptions> options)
{
    private Caller Caller => ctx.Caller ?? throw new InvalidOperationException("No caller.");

    /// <summary>A session sees its own images, an app-scoped token its app's, the tenant admin and the platform admin all of the tenant's.</summary>
    private IQueryable<GeneratedImage> Visible()
    {
        var q = db.GeneratedImages.AsNoTracking();
        if (Caller.Kind == CallerKind.Session)
        {
            var own = Caller.CredentialId;
            q = q.Where(i => i.SessionId == own);
        }
        else if (!Caller.Has(Contracts.Identity.TokenScope.Admin))
        {
            var app = Caller.AppId;
            q = q.Where(i => i.AppId == app);
        }

        return q;
    }

    public Task<Page<GeneratedImageDto>> ListAsync(string? jobId, string? appId, string? sessionId, string? modelVersionId, DateTime? from, DateTime? to,
        PageRequest page, CancellationToken ct)
    {
        var q = Visible();
        q = jobId is null ? q : q.Where(i => i.JobId == jobId);
        q = appId is null ? q : q.Where(i => i.AppId == appId);
        q = sessionId is null ? q : q.Where(i => i.SessionId == sessionId);
        q = modelVersionId is null ? q : q.Where(i => i.ModelVersionId == modelVersionId);
        q = from is null ? q : q.Where(i => i.CreatedAt >= from);
        q = to is null ? q : q.Where(i => i.CreatedAt < to);
        return q.OrderByDescending(i => i.CreatedAt).ThenBy(i => i.JobId).ThenBy(i => i.Index).ToPageAsync(page, i => ToDto(i, null, null), ct);
    }

    public async Task<GeneratedImageDto> GetAsync(string id, CancellationToken ct)
    {
        var image = await FindAsync(id, ct);
        var (query, expires) = signer.Sign(image.Id);
        return ToDto(image, ApiLinks.ImageContent(image.Id, query), DateTimeOffset.FromUnixTimeSeconds(expires).UtcDateTime);
    }

    /// <summary>The bytes, for whoever holds an unexpired signed URL (no credential: the URL is the credential).</summary>
    public async Task<Stream> OpenSignedAsync(string id, long expires, string? keyId, string? sig, CancellationToken ct)
    {
        if (!signer.Verify(id, expires, keyId, sig))
        {
            throw new AtelierException(ErrorCatalog.b_session_tokenforbidden, status: 403, errCode: ErrCodes.ImageUrl, errMessage: "the image URL is expired or its signature is wrong");
        }

        var image = await db.GeneratedImages.IgnoreQueryFilters().AsNoTracking().FirstOrDefaultAsync(i => i.Id == id, ct) ?? throw NotFound(id);
        return await store.OpenReadAsync(image.StorageKey, ct);
    }

    /// <summary>
    /// Deletes each image's bytes, then its record. An empty batch is <c>b_generatedimage_imagesisempty</c>; when the
    /// store fails to delete some, their records stay (marked with the error) and the answer is
    /// <c>b_generatedimage_deletefail</c> naming them, after the others are deleted.
    /// </summary>
    public async Task<DeleteImagesResult> DeleteAsync(DeleteImagesRequest req, CancellationToken ct)
    {
        var ids = req.Ids?.Where(i => !string.IsNullOrWhiteSpace(i)).Distinct().ToList() ?? [];
        if (ids.Count == 0)
        {
            throw new AtelierException(ErrorCatalog.b_generatedimage_imagesisempty, errCode: ErrCodes.Ids, errMessage: "name at least one image id");
        }

        if (ids.Count > options.Value.MaxDeleteBatch)
        {
            throw AtelierException.InvalidInput("ids", $"at most {options.Value.MaxDeleteBatch} per call");
        }

        var images = await Visible().Where(i => ids.Contains(i.Id)).ToListAsync(ct);
        var (deleted, failed) = await DeleteStoredAsync(db, store, images, ct);
        if (failed.Count > 0)
        {
            throw new AtelierException(ErrorCatalog.b_generatedimage_deletefail, errCode: ErrCodes.StorageDelete,
                errMessage: $"{failed.Count} of {images.Count} images could not be deleted from storage and were kept: {string.Join(", ", failed)}");
        }

        return new DeleteImagesResult(deleted, [.. ids.Except(images.Select(i => i.Id))]);
    }

    /// <summary>Deletes stored bytes then records; a failed store delete keeps the record (with the error) so nothing is orphaned.</summary>
    public static async Task<(List<string> Deleted, List<string> Failed)> DeleteStoredAsync(AtelierDb db, IObjectStore store, IReadOnlyList<GeneratedImage> images, CancellationToken ct)
    {
        var deleted = new List<string>();
        var failed = new List<string>();
        foreach (var image in images)
        {
            try
            {
                await store.DeleteAsync(image.StorageKey, ct);
                await db.GeneratedImages.IgnoreQueryFilters().Where(i => i.Id == image.Id).ExecuteDeleteAsync(ct);
                deleted.Add(image.Id);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or Amazon.Runtime.AmazonServiceException or HttpRequestException)
            {
                var message = e.Message.Length > 1000 ? e.Message[..1000] : e.Message;
                await db.GeneratedImages.IgnoreQueryFilters().Where(i => i.Id == image.Id).ExecuteUpdateAsync(u => u.SetProperty(i => i.DeleteError, message), ct);
                failed.Add(image.Id);
            }
        }

        return (deleted, failed);
    }

    private async Task<GeneratedImage> FindAsync(string id, CancellationToken ct) =>
        await Visible().FirstOrDefaultAsync(i => i.Id == id, ct) ?? throw NotFound(id);

    private static AtelierException NotFound(string id) =>
        new(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"image: {id} does not exist" }, status: 404, errCode: ErrCodes.ImageNotFound);

    private static GeneratedImageDto ToDto(GeneratedImage i, string? url, DateTime? expires) =>
        new(i.Id, i.JobId, i.Index, i.AppId, i.SessionId, i.ModelVersionId, i.Seed, i.Infotext, i.Width, i.Height, i.Size, i.Sha256, i.CreatedAt, url, expires);
}
