using System.Security.Cryptography;
using System.Text;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Images;

/// <summary>
/// Signs image URLs: <c>HMAC-SHA256(key, id + "\n" + expiry)</c> with the image-URL key of the master key
/// (<see cref="MasterKeys"/>, never in the database); the URL names the key's id, so URLs signed before a rotation verify
/// while the previous key is in its grace period. Verified in constant time; an expiry further away than the configured
/// lifetime is refused whoever signed it.
/// </summary>
public sealed class ImageUrlSigner(MasterKeys keys, TimeProvider clock, IOptions<ImagesOptions> options)
{
    /// <summary>The query of a signed URL for <paramref name="imageId"/>, and its expiry.</summary>
    public (string Query, long Expires) Sign(string imageId)
    {
        var expires = clock.GetUtcNow().AddSeconds(options.Value.UrlLifetimeSeconds).ToUnixTimeSeconds();
        var sig = Convert.ToHexStringLower(Mac(keys.Current(KeyPurpose.ImageUrls), imageId, expires));
        return ($"expires={expires}&kid={keys.CurrentId}&sig={sig}", expires);
    }

    public bool Verify(string imageId, long expires, string? keyId, string? signature)
    {
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        if (expires < now || expires - now > options.Value.UrlLifetimeSeconds
            || signature is null || signature.Length != 64 || !signature.All(Uri.IsHexDigit)
            || keyId is null || keys.ById(keyId, KeyPurpose.ImageUrls) is not { } key)
        {
            return false;
        }

        return CryptographicOperations.FixedTimeEquals(Mac(key, imageId, expires), Convert.FromHexString(signature));
    }

    private static byte[] Mac(byte[] key, string imageId, long expires) => HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{imageId}\n{expires}"));
}

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

/// <summary>Deletes images older than their tenant's <c>imageRetentionDays</c>, every <see cref="ImagesOptions.RetentionSweepMinutes"/>.</summary>
public sealed partial class ImageRetentionSweeper(IServiceScopeFactory scopes, TimeProvider clock, IOptions<ImagesOptions> options, ILogger<ImageRetentionSweeper> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMinutes(Math.Max(1, options.Value.RetentionSweepMinutes)), clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var (deleted, failed) = await SweepAsync(stoppingToken);
                if (deleted + failed > 0)
                {
                    LogSwept(logger, deleted, failed);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e);
            }
        }
    }

    public async Task<(int Deleted, int Failed)> SweepAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var store = scope.ServiceProvider.GetRequiredService<IObjectStore>();
        var now = clock.GetUtcNow().UtcDateTime;
        var tenants = await db.TenantConfigs.IgnoreQueryFilters().AsNoTracking().Select(c => new { c.TenantId, c.ImageRetentionDays }).ToListAsync(ct);
        int deleted = 0, failed = 0;
        foreach (var t in tenants)
        {
            var before = now.AddDays(-Math.Max(1, t.ImageRetentionDays));
            var old = await db.GeneratedImages.IgnoreQueryFilters().AsNoTracking()
                .Where(i => i.TenantId == t.TenantId && i.CreatedAt < before && i.DeleteError == null).Take(1000).ToListAsync(ct);
            var (d, f) = await ImageService.DeleteStoredAsync(db, store, old, ct);
            deleted += d.Count;
            failed += f.Count;
        }

        return (deleted, failed);
    }

    [LoggerMessage(4100, LogLevel.Information, "Image retention: {Deleted} images deleted, {Failed} kept after a storage failure")]
    private static partial void LogSwept(ILogger logger, int deleted, int failed);

    [LoggerMessage(4101, LogLevel.Error, "Image retention sweep failed")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
