using Atelier.Core.Common;
using Atelier.Core.Models;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Jobs;

/// <summary>
/// A worker's hot request info in the queue's terms (singleton): an entry that is a model key already
/// (<c>sha256:&lt;hex&gt;</c>) is taken as it is; a version id (what workers sent before jobs were keyed by content) becomes
/// its version's key, read once and kept for a minute (a version's primary file does not change once it has one).
/// </summary>
public sealed class HotModelKeys(TimeProvider clock) : TtlCache<string, string>(clock, TimeSpan.FromMinutes(1), 10_000, StringComparer.Ordinal)
{
    public async Task<string?> KeyOfAsync(AtelierDb db, string? hot, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(hot) || ModelKeys.IsContentKey(hot))
        {
            return string.IsNullOrEmpty(hot) ? null : hot;
        }

        return await GetOrAddAsync(hot, async () =>
        {
            var sha = await db.ModelFiles.IgnoreQueryFilters().AsNoTracking().Where(f => f.VersionId == hot && f.IsPrimary)
                .Select(f => f.Sha256).FirstOrDefaultAsync(ct);
            return ModelKeys.Of(hot, sha);
        });
    }
}
