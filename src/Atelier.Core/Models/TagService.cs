using Atelier.Contracts.Errors;
using Atelier.Contracts.Models;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Models;

/// <summary>The tag dictionary models are labelled from: the platform's tags and the tenant's own.</summary>
public sealed class TagService(AtelierDb db, RequestContext ctx, TimeProvider clock)
{
    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<IReadOnlyList<TagDto>> ListTagsAsync(CancellationToken ct) =>
        await db.Tags.AsNoTracking().Where(t => t.TenantId == null || t.TenantId == TenantId).OrderBy(t => t.Name)
            .Select(t => new TagDto(t.Id, t.Name, t.TenantId == null ? "platform" : "tenant")).ToListAsync(ct);

    /// <summary>Adds a tag to the tenant's dictionary, or to the platform's when <paramref name="platform"/>.</summary>
    public async Task<TagDto> CreateTagAsync(CreateTagRequest req, bool platform, CancellationToken ct)
    {
        var name = Validate.Name(req.Name, "name", 32);
        var scope = platform ? null : TenantId;
        if (await db.Tags.AnyAsync(t => t.Name == name && (t.TenantId == null || t.TenantId == scope), ct))
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"name: tag {name} already exists" }, status: 409);
        }

        var tag = new Tag { Id = Ids.New("tag", clock), TenantId = scope, Name = name, CreatedAt = Now };
        db.Tags.Add(tag);
        Audit.Record(db, ctx, clock, "tag.create", "tag", tag.Id, scope);
        await db.SaveChangesAsync(ct);
        return new TagDto(tag.Id, tag.Name, platform ? "platform" : "tenant");
    }

    /// <summary>A model's tags as stored (one per line, sorted), every one from the dictionary, else <c>b_tag_invalidtagincluded</c>.</summary>
    internal async Task<string> CheckTagsAsync(IReadOnlyList<string>? tags, CancellationToken ct)
    {
        if (tags is null || tags.Count == 0)
        {
            return "";
        }

        var wanted = tags.Select(t => t?.Trim() ?? "").Distinct().ToList();
        var known = await db.Tags.AsNoTracking().Where(t => (t.TenantId == null || t.TenantId == TenantId) && wanted.Contains(t.Name))
            .Select(t => t.Name).ToListAsync(ct);
        var invalid = wanted.Except(known).ToList();
        if (invalid.Count > 0)
        {
            throw new AtelierException(ErrorCatalog.b_tag_invalidtagincluded, errCode: ErrCodes.UnknownTags, errMessage: string.Join(", ", invalid));
        }

        return string.Join('\n', wanted.Order());
    }
}
