using Atelier.Contracts.Models;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Models;

/// <summary>Records stored bytes once by hash, and who may refer to them by hash.</summary>
public static class BlobRegistry
{
    public const string PublicOwner = "*";

    public static async Task<StoredBlob> RegisterAsync(AtelierDb db, BlobFacts facts, string owner, TimeProvider clock, CancellationToken ct)
    {
        var blob = await db.Blobs.FirstOrDefaultAsync(b => b.Sha256 == facts.Sha256, ct);
        if (blob is null)
        {
            blob = new StoredBlob
            {
                Sha256 = facts.Sha256, Size = facts.Size, Format = facts.Format, DetectedKind = facts.DetectedKind,
                AutoV2 = facts.AutoV2, AutoV3 = facts.AutoV3, MetadataJson = facts.MetadataJson, CreatedAt = clock.GetUtcNow().UtcDateTime,
            };
            db.Blobs.Add(blob);
        }

        if (!await db.BlobGrants.AnyAsync(g => g.Sha256 == facts.Sha256 && g.Owner == owner, ct))
        {
            db.BlobGrants.Add(new BlobGrant { Sha256 = facts.Sha256, Owner = owner });
        }

        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException e) when (DbErrors.IsUniqueViolation(e))
        {
            // The same bytes arrived twice at once: the other writer's rows stand.
            db.ChangeTracker.Clear();
            blob = await db.Blobs.AsNoTracking().FirstAsync(b => b.Sha256 == facts.Sha256, ct);
            if (!await db.BlobGrants.AnyAsync(g => g.Sha256 == facts.Sha256 && g.Owner == owner, ct))
            {
                db.BlobGrants.Add(new BlobGrant { Sha256 = facts.Sha256, Owner = owner });
                await db.SaveChangesAsync(ct);
            }
        }

        return blob;
    }

    /// <summary>A blob the tenant may refer to by hash: one it stored itself, or a public one. Others' blobs do not exist for it.</summary>
    public static Task<StoredBlob?> FindVisibleAsync(AtelierDb db, string sha256, string tenantId, CancellationToken ct) =>
        db.Blobs.AsNoTracking()
            .Where(b => b.Sha256 == sha256 && db.BlobGrants.Any(g => g.Sha256 == sha256 && (g.Owner == tenantId || g.Owner == PublicOwner)))
            .FirstOrDefaultAsync(ct);

    public static BlobDto ToDto(StoredBlob b) => new(b.Sha256, b.Size, b.Format, b.DetectedKind, b.AutoV2, b.AutoV3, b.MetadataJson);
}
