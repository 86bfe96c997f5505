using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Models;

/// <summary>
/// Resolves the model of a generation request in the caller's tenant: the reference A1111 clients put in
/// <c>override_settings.sd_model_checkpoint</c> (a title <c>name [hash]</c>, a name, a short or full SHA-256), else the
/// token's checkpoint config, else the tenant's first checkpoint. The version must be usable by the caller
/// (its role, its files stored).
/// </summary>
public sealed class ModelResolver(AtelierDb db, RequestContext ctx, ModelVersionService versions, ResolutionCache cache, NetworkCache networks)
{
    private static readonly string[] Runnable = ["checkpoint", "onnx"];

    /// <summary>
    /// Resolves, remembering the answer for the auth cache's few seconds per (tenant, credential, role, reference): a
    /// client submitting many jobs costs one resolution, not seven reads each. A model changed meanwhile is seen
    /// within those seconds, as a revoked token is.
    /// </summary>
    public async Task<ResolvedModel> ResolveAsync(string? reference, CancellationToken ct)
    {
        var caller = ctx.Caller!;
        var key = $"{ctx.TenantId}\n{caller.CredentialId}\n{caller.RoleId}\n{reference}";
        return await cache.GetOrAddAsync(key, () => ResolveUncachedAsync(reference, ct));
    }

    private async Task<ResolvedModel> ResolveUncachedAsync(string? reference, CancellationToken ct)
    {
        var versionId = string.IsNullOrWhiteSpace(reference) ? await DefaultVersionAsync(ct) : await FindAsync(reference.Trim(), ct);
        var access = await versions.AccessAsync(versionId, ct);
        var version = await db.ModelVersions.AsNoTracking().FirstAsync(v => v.Id == versionId, ct);
        var primary = access.Files.First(f => f.Primary);
        return new ResolvedModel(version.Id, access.ModelId, access.ModelName, version.Name, primary.Sha256, access.ModelType);
    }

    /// <summary>
    /// Every version of the tenant's models of <paramref name="types"/> the caller may use now (A1111's sd-models, loras,
    /// embeddings): the rules of <see cref="ModelVersionService.AccessAsync"/> (role, every file stored, one primary) applied in
    /// memory to two reads, so a tenant with many models costs the same two queries as one with a few.
    /// </summary>
    public async Task<IReadOnlyList<ResolvedModel>> ListUsableAsync(string[] types, CancellationToken ct)
    {
        var versions = await (from v in db.ModelVersions.AsNoTracking()
                              join m in db.Models.AsNoTracking() on v.ModelId equals m.Id
                              where types.Contains(m.Type)
                              orderby m.Name, v.CreatedAt descending
                              select new { v.Id, ModelId = m.Id, ModelName = m.Name, ModelType = m.Type, VersionName = v.Name, v.AvailableRoleIds }).ToListAsync(ct);
        var files = (await (from f in db.ModelFiles.AsNoTracking()
                            join m in db.Models.AsNoTracking() on f.ModelId equals m.Id
                            where types.Contains(m.Type)
                            select new { f.VersionId, f.IsPrimary, f.State, f.Sha256 }).ToListAsync(ct))
            .ToLookup(f => f.VersionId);
        var roleId = ctx.Caller?.RoleId;
        var usable = new List<ResolvedModel>();
        foreach (var v in versions)
        {
            // Not usable by this caller now (its role, or files still syncing): A1111 would not list it either.
            var own = files[v.Id].ToList();
            var roleAllowed = roleId is null || v.AvailableRoleIds.Length == 0 || v.AvailableRoleIds.Split('\n').Contains(roleId);
            if (roleAllowed && own.All(f => f.State == "stored") && own.Count(f => f.IsPrimary) == 1)
            {
                usable.Add(new ResolvedModel(v.Id, v.ModelId, v.ModelName, v.VersionName, own.First(f => f.IsPrimary).Sha256, v.ModelType));
            }
        }

        return usable;
    }

    public static readonly string[] Checkpoints = Runnable;

    /// <summary>
    /// The tenant's networks a job's prompts name that the caller may use, the newest version of each name: the LoRAs
    /// its prompt names (<c>&lt;lora:name&gt;</c>; the same name, then in any case), and the textual-inversion embeddings
    /// whose names appear in the prompt or the negative prompt as words (any case, as CLIP's tokenizer reads them). A
    /// name with none is left out, as A1111 leaves it out; the engine says so. The listing is the caller's role's, kept for
    /// the auth cache's seconds (<see cref="NetworkCache"/>), so a stream of submits reads it once.
    /// </summary>
    public async Task<IReadOnlyList<ResolvedModel>> ResolveNetworksAsync(string? prompt, string? negative, CancellationToken ct)
    {
        var loras = Contracts.A1111.ExtraNetworkNames.Loras(prompt);
        var usable = await networks.GetOrAddAsync($"{ctx.TenantId}\n{ctx.Caller?.RoleId}", () => ListUsableAsync(["lora", "embedding"], ct));
        if (usable.Count == 0)
        {
            return [];
        }

        var found = loras.Select(n => usable.FirstOrDefault(m => m.Type == "lora" && m.Name == n)
                                       ?? usable.FirstOrDefault(m => m.Type == "lora" && string.Equals(m.Name, n, StringComparison.OrdinalIgnoreCase)))
            .OfType<ResolvedModel>().ToList();
        var text = $"{prompt}\n{negative}";
        found.AddRange(usable.Where(m => m.Type == "embedding").DistinctBy(m => m.Name.ToLowerInvariant())
            .Where(m => Contracts.A1111.ExtraNetworkNames.HasWord(text, m.Name)));
        return [.. found.DistinctBy(m => m.VersionId)];
    }

    private async Task<string> FindAsync(string reference, CancellationToken ct)
    {
        // "name [abcdef0123]": the hash decides.
        var name = reference;
        string? hash = null;
        var bracket = reference.LastIndexOf(" [", StringComparison.Ordinal);
        if (bracket > 0 && reference.EndsWith(']'))
        {
            name = reference[..bracket];
            hash = reference[(bracket + 2)..^1];
        }
        else if (reference.Length is 8 or 10 or 64 && reference.All(Uri.IsHexDigit))
        {
            hash = reference;
        }

        if (hash is not null)
        {
            var lower = hash.ToLowerInvariant();
            var byHash = await (from f in db.ModelFiles.AsNoTracking()
                                join m in db.Models.AsNoTracking() on f.ModelId equals m.Id
                                where f.IsPrimary && f.Sha256 != null && f.Sha256.StartsWith(lower) && Runnable.Contains(m.Type)
                                orderby f.CreatedAt descending
                                select f.VersionId).FirstOrDefaultAsync(ct);
            if (byHash is not null)
            {
                return byHash;
            }
        }

        var model = await db.Models.AsNoTracking().FirstOrDefaultAsync(m => m.Name == name && Runnable.Contains(m.Type), ct);
        var latest = model is null ? null
            : await db.ModelVersions.AsNoTracking().Where(v => v.ModelId == model.Id).OrderByDescending(v => v.CreatedAt).Select(v => v.Id).FirstOrDefaultAsync(ct);
        return latest ?? throw AtelierException.With(ErrorCatalog.b_model_modelnotexist, "ID", reference);
    }

    private async Task<string> DefaultVersionAsync(CancellationToken ct)
    {
        var caller = ctx.Caller!;
        var tokenId = caller.Kind switch
        {
            CallerKind.Token => caller.CredentialId,
            CallerKind.Session => await db.Sessions.AsNoTracking().Where(s => s.Id == caller.CredentialId).Select(s => s.TokenId).FirstOrDefaultAsync(ct),
            _ => null,
        };
        var configured = tokenId is null ? null
            : await db.ApiTokens.AsNoTracking().Where(t => t.Id == tokenId).Select(t => t.CheckpointVersionId).FirstOrDefaultAsync(ct);
        if (configured is not null && await db.ModelVersions.AnyAsync(v => v.Id == configured, ct))
        {
            return configured;
        }

        // No checkpoint named or configured: the tenant's oldest runnable model that has a version (A1111 runs whatever is loaded).
        var first = await (from v in db.ModelVersions.AsNoTracking()
                           join m in db.Models.AsNoTracking() on v.ModelId equals m.Id
                           where Runnable.Contains(m.Type)
                           orderby m.CreatedAt, v.CreatedAt descending
                           select v.Id).FirstOrDefaultAsync(ct);
        return first ?? throw new AtelierException(ErrorCatalog.p_token_checkpointversionnotfound, errCode: ErrCodes.NoCheckpoint,
            errMessage: "the request names no model (override_settings.sd_model_checkpoint), the token has no checkpoint config and the tenant has no checkpoint");
    }
}
