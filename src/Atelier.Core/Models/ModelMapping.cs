using Atelier.Contracts.Models;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Models;

/// <summary>Models, versions and files as the API shows them; a version's sync state comes from its files' states.</summary>
internal static class ModelMapping
{
    public static ModelDto ToDto(Model m) =>
        new(m.Id, m.Name, m.Type, m.Description, m.Tags.Length == 0 ? [] : m.Tags.Split('\n'), m.CreatedAt, m.UpdatedAt);

    public static async Task<ModelVersionDto> ToDtoAsync(AtelierDb db, ModelVersion v, CancellationToken ct)
    {
        var files = await db.ModelFiles.AsNoTracking().Where(f => f.VersionId == v.Id).OrderBy(f => f.CreatedAt).ToListAsync(ct);
        var dtos = new List<ModelFileDto>();
        foreach (var f in files)
        {
            dtos.Add(await FileDtoAsync(db, f, ct));
        }

        var sync = files.Any(f => f.State == "failed") ? "failed" : files.All(f => f.State == "stored") ? "synced" : "syncing";
        return new ModelVersionDto(v.Id, v.ModelId, v.Name, v.AvailableRoleIds.Length == 0 ? [] : v.AvailableRoleIds.Split('\n'), sync, dtos, v.CreatedAt);
    }

    public static async Task<ModelFileDto> FileDtoAsync(AtelierDb db, ModelFile f, CancellationToken ct)
    {
        var blob = f.Sha256 is null ? null : await db.Blobs.AsNoTracking().FirstOrDefaultAsync(b => b.Sha256 == f.Sha256, ct);
        return new ModelFileDto(f.Id, f.VersionId, f.AliasName, f.IsPrimary, f.Source, f.State, f.Sha256, f.Size, f.Format,
            blob?.DetectedKind, blob?.AutoV2, blob?.AutoV3, f.SourceUrl);
    }
}
