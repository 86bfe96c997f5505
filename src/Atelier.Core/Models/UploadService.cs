using System.Buffers;
using System.Globalization;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Models;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Models;

/// <summary>
/// Uploads of model files. The client declares the type, name and size (and optionally the SHA-256), then PUTs the
/// bytes: to Atelier with the local store (streamed to disk while hashed), or to a presigned URL with S3 (then
/// <c>complete</c> streams the staged object once to hash it). A size or hash that differs from the declaration
/// rejects the upload and deletes the bytes.
/// </summary>
public sealed class UploadService(AtelierDb db, RequestContext ctx, TimeProvider clock, IObjectStore store, IOptions<ModelsOptions> options, StorageSpace space)
{
    public static readonly string[] Types = ["checkpoint", "lora", "embedding", "vae", "controlnet", "upscaler", "onnx"];
    private const string SecretPrefix = "atu";

    /// <summary>The header that carries an upload's secret (never the URL: URLs end up in logs and proxies).</summary>
    public const string SecretHeader = "X-Upload-Secret";

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<UploadDto> CreateAsync(CreateUploadRequest req, string baseUrl, CancellationToken ct)
    {
        if (req.Type is null || !Types.Contains(req.Type))
        {
            throw new AtelierException(ErrorCatalog.p_user_invalidossuploadtype, errCode: ErrCodes.UploadType,
                errMessage: $"type '{req.Type}' is not one of {string.Join(", ", Types)}");
        }

        var fileName = Validate.Name(req.FileName, "fileName", 255);
        if (fileName.Contains('/', StringComparison.Ordinal) || fileName.Contains('\\', StringComparison.Ordinal))
        {
            throw AtelierException.InvalidInput("fileName", "must be a bare file name");
        }

        var size = req.Size ?? throw AtelierException.InvalidInput("size", "is required");
        if (size < 1 || size > options.Value.MaxFileBytes)
        {
            throw AtelierException.InvalidInput("size", $"must be between 1 and {options.Value.MaxFileBytes} bytes");
        }

        var sha = req.Sha256?.ToLowerInvariant();
        if (sha is not null && (sha.Length != 64 || !sha.All(Uri.IsHexDigit)))
        {
            throw AtelierException.InvalidInput("sha256", "must be 64 hex digits");
        }

        var secret = Secrets.Issue(SecretPrefix);
        var upload = new Upload
        {
            Id = Ids.New("upl", clock), TenantId = TenantId, Type = req.Type, FileName = fileName, DeclaredSize = size,
            DeclaredSha256 = sha, SecretHash = Secrets.Hash(secret), State = "pending", CreatedAt = Now,
            ExpiresAt = Now.AddMinutes(options.Value.UploadLifetimeMinutes),
        };
        var lifetime = TimeSpan.FromMinutes(options.Value.UploadLifetimeMinutes);
        // Past the store's one-PUT limit, the client sends parts: the multipart upload is begun before the record is
        // written, so that a store that refuses leaves no upload behind.
        var parts = await store.PresignPartsAsync(StagingKey(upload.Id), size, lifetime, ct);
        upload.PartsUploadId = parts?.UploadId;
        upload.PartBytes = parts?.PartSize ?? 0;
        db.Uploads.Add(upload);
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch when (parts is not null)
        {
            await store.AbortPartsAsync(StagingKey(upload.Id), parts.UploadId, CancellationToken.None);
            throw;
        }

        if (parts is not null)
        {
            return ToDto(upload, "", null) with
            {
                PartSize = parts.PartSize,
                Parts = [.. parts.Urls.Select((url, i) => new UploadPartDto(i + 1, url.ToString(), i * parts.PartSize, Math.Min(parts.PartSize, size - (i * parts.PartSize))))],
            };
        }

        var presigned = store.PresignPut(StagingKey(upload.Id), lifetime);
        return presigned is not null
            ? ToDto(upload, presigned.ToString(), null)
            : ToDto(upload, ApiLinks.UploadContent(baseUrl, upload.Id), null) with
            {
                Headers = new Dictionary<string, string> { [SecretHeader] = secret },
            };
    }

    public async Task<UploadDto> GetAsync(string id, CancellationToken ct)
    {
        var upload = await db.Uploads.AsNoTracking().FirstOrDefaultAsync(u => u.Id == id, ct) ?? throw NotFound(id);
        return ToDto(upload, "", await BlobOfAsync(upload, ct));
    }

    /// <summary>
    /// Receives the bytes of an upload through Atelier (the local store): streamed to a temporary file while hashed,
    /// then moved under its content address. The upload's secret (from the header <see cref="SecretHeader"/>) is the credential.
    /// </summary>
    public async Task<UploadDto> ReceiveAsync(string id, string? secret, Stream body, CancellationToken ct)
    {
        var upload = await db.Uploads.IgnoreQueryFilters().FirstOrDefaultAsync(u => u.Id == id, ct);
        if (upload is null || !Secrets.IsWellFormed(secret, SecretPrefix) || !Secrets.HashEquals(upload.SecretHash, Secrets.Hash(secret!)))
        {
            throw NotFound(id);
        }

        db.TenantScope = upload.TenantId;
        CheckPending(upload);
        space.EnsureRoom(upload.DeclaredSize);
        var temp = Path.Combine(TempFolder(store), $"{upload.Id}.{Guid.NewGuid():N}");
        BlobFacts facts;
        try
        {
            using var inspector = new BlobInspector();
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await CopyInspectingAsync(body, file, inspector, upload.DeclaredSize, ct);
            }

            facts = inspector.Finish();
            await VerifyAsync(upload, facts, ct);
            var key = ObjectStores.BlobKey(facts.Sha256);
            if (await store.SizeAsync(key, ct) is null)
            {
                await store.PutFileAsync(key, temp, ct);
            }
        }
        finally
        {
            File.Delete(temp);
        }

        return await FinishAsync(upload, facts, ct);
    }

    /// <summary>Finishes an upload the client PUT to a presigned URL: hashes the staged object, verifies, moves it under its content address.</summary>
    public async Task<UploadDto> CompleteAsync(string id, IReadOnlyList<CompletedPart>? parts, CancellationToken ct)
    {
        var upload = await db.Uploads.FirstOrDefaultAsync(u => u.Id == id, ct) ?? throw NotFound(id);
        if (upload.State == "stored")
        {
            return ToDto(upload, "", await BlobOfAsync(upload, ct));
        }

        CheckPending(upload);
        var staging = StagingKey(upload.Id);
        if (upload.PartsUploadId is { } multipart)
        {
            await JoinPartsAsync(upload, staging, multipart, parts, ct);
        }

        if (await store.SizeAsync(staging, ct) is null)
        {
            throw AtelierException.InvalidInput("upload", "no bytes have been uploaded yet");
        }

        using var inspector = new BlobInspector();
        await using (var stream = await store.OpenReadAsync(staging, ct))
        {
            await CopyInspectingAsync(stream, Stream.Null, inspector, upload.DeclaredSize, ct, onOverflow: () => store.DeleteAsync(staging, ct));
        }

        var facts = inspector.Finish();
        try
        {
            await VerifyAsync(upload, facts, ct);
            var key = ObjectStores.BlobKey(facts.Sha256);
            if (await store.SizeAsync(key, ct) is null)
            {
                await store.CopyAsync(staging, key, ct);
            }
        }
        finally
        {
            await store.DeleteAsync(staging, ct);
        }

        return await FinishAsync(upload, facts, ct);
    }

    /// <summary>
    /// Joins the parts the client sent into the staged object, by the numbers and ETags it names (every part once, in
    /// order). The store checks each ETag against the part it holds; a refusal is the client's to fix, and the upload
    /// stays pending so it can send a part again and complete again.
    /// </summary>
    private async Task JoinPartsAsync(Upload upload, string staging, string multipart, IReadOnlyList<CompletedPart>? parts, CancellationToken ct)
    {
        var count = (int)((upload.DeclaredSize + upload.PartBytes - 1) / Math.Max(1, upload.PartBytes));
        if (parts is null || parts.Count == 0)
        {
            throw AtelierException.InvalidInput("parts", $"this upload is sent in {count} parts: complete it with each part's partNumber and the ETag its PUT answered");
        }

        if (parts.Count != count)
        {
            throw AtelierException.InvalidInput("parts", $"this upload has {count} parts, and {parts.Count} were named");
        }

        var named = new List<UploadedPart>(parts.Count);
        foreach (var part in parts)
        {
            if (part.PartNumber is not { } number || number != named.Count + 1)
            {
                throw AtelierException.InvalidInput("parts", $"list each part once, in order from 1 (expected part {named.Count + 1}, got {part.PartNumber?.ToString(CultureInfo.InvariantCulture) ?? "none"})");
            }

            if (string.IsNullOrWhiteSpace(part.ETag) || part.ETag.Length > 200)
            {
                throw AtelierException.InvalidInput("parts", $"part {number} needs the ETag its PUT answered");
            }

            named.Add(new UploadedPart(number, part.ETag));
        }

        try
        {
            await store.CompletePartsAsync(staging, multipart, named, ct);
        }
        catch (ObjectStoreRefusedException e)
        {
            throw AtelierException.InvalidInput("parts", e.Message);
        }

        upload.PartsUploadId = null;
        await db.SaveChangesAsync(ct);
    }

    /// <summary>Copies at most <paramref name="limit"/> bytes, feeding the inspector; one byte more rejects the upload.</summary>
    private async Task CopyInspectingAsync(Stream from, Stream to, BlobInspector inspector, long limit, CancellationToken ct, Func<Task>? onOverflow = null)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer.AsMemory(0, buffer.Length), ct)) > 0)
            {
                if (inspector.BytesSeen + read > limit)
                {
                    if (onOverflow is not null)
                    {
                        await onOverflow();
                    }

                    await RejectAsync(null, $"more bytes than the declared {limit}", ct);
                }

                inspector.Append(buffer.AsSpan(0, read));
                await to.WriteAsync(buffer.AsMemory(0, read), ct);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task VerifyAsync(Upload upload, BlobFacts facts, CancellationToken ct)
    {
        if (facts.Size != upload.DeclaredSize)
        {
            await RejectAsync(upload, $"received {facts.Size} bytes, declared {upload.DeclaredSize}", ct);
        }

        if (upload.DeclaredSha256 is { } declared && declared != facts.Sha256)
        {
            await RejectAsync(upload, $"received bytes hash to {facts.Sha256}, declared {declared}", ct);
        }
    }

    private async Task RejectAsync(Upload? upload, string why, CancellationToken ct)
    {
        if (upload is not null)
        {
            upload.State = "failed";
            upload.Error = why;
            await db.SaveChangesAsync(ct);
        }

        throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"upload: {why}" },
            errCode: ErrCodes.UploadMismatch, errMessage: why);
    }

    private async Task<UploadDto> FinishAsync(Upload upload, BlobFacts facts, CancellationToken ct)
    {
        var blob = await BlobRegistry.RegisterAsync(db, facts, upload.TenantId, clock, ct);
        upload.State = "stored";
        upload.Sha256 = facts.Sha256;
        await db.SaveChangesAsync(ct);
        return ToDto(upload, "", BlobRegistry.ToDto(blob));
    }

    private void CheckPending(Upload upload)
    {
        if (upload.State != "pending")
        {
            throw AtelierException.InvalidInput("upload", $"is {upload.State}; ask for a new upload");
        }

        if (upload.ExpiresAt <= Now)
        {
            throw AtelierException.InvalidInput("upload", "its URL has expired; ask for a new upload");
        }
    }

    private async Task<BlobDto?> BlobOfAsync(Upload upload, CancellationToken ct) =>
        upload.Sha256 is null ? null : await db.Blobs.AsNoTracking().Where(b => b.Sha256 == upload.Sha256).Select(b => BlobRegistry.ToDto(b)).FirstOrDefaultAsync(ct);

    /// <summary>Where a file is written before it is stored: beside the local store (so storing is a rename), else the system's temp folder.</summary>
    public static string TempFolder(IObjectStore store) => store is LocalObjectStore local ? local.TempDirectory : Path.GetTempPath();

    private static string StagingKey(string uploadId) => $"staging/{uploadId}";

    private static AtelierException NotFound(string id) =>
        new(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"upload: {id} does not exist" }, status: 404);

    private UploadDto ToDto(Upload u, string url, BlobDto? blob) =>
        new(u.Id, u.Type, u.FileName, u.DeclaredSize, u.State, u.Sha256, u.Error, url, "PUT", store.Name != "local", u.ExpiresAt, blob);
}
