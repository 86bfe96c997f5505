using System.Collections.Concurrent;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Tenancy;

/// <summary>The languages error messages are written in: Chinese (the seed's) and English.</summary>
public static class Languages
{
    public const string Chinese = "zh";
    public const string English = "en";

    public static readonly IReadOnlyList<string> Known = [Chinese, English];
}

/// <summary>
/// Each tenant's language for error messages (its config's <c>language</c>), read when an error is written and kept
/// for <see cref="MaxAge"/>; a change through this replica's config API is seen at once, another replica's within
/// that time.
/// </summary>
public sealed class TenantLanguages(TimeProvider clock)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, (string? Language, long At)> _known = new(StringComparer.Ordinal);

    public async Task<string?> OfAsync(AtelierDb db, string tenantId, CancellationToken ct)
    {
        if (_known.TryGetValue(tenantId, out var hit) && clock.GetElapsedTime(hit.At) < MaxAge)
        {
            return hit.Language;
        }

        var language = await db.TenantConfigs.IgnoreQueryFilters().AsNoTracking().Where(c => c.TenantId == tenantId).Select(c => c.Language).FirstOrDefaultAsync(ct);
        if (_known.Count > 100_000)
        {
            _known.Clear();
        }

        _known[tenantId] = (language, clock.GetTimestamp());
        return language;
    }

    public void Forget(string tenantId) => _known.TryRemove(tenantId, out _);
}

/// <summary>The request's view of <see cref="TenantLanguages"/> (scoped: it reads through the request's database context).</summary>
public sealed class TenantLanguage(AtelierDb db, TenantLanguages languages)
{
    public Task<string?> OfAsync(string tenantId, CancellationToken ct) => languages.OfAsync(db, tenantId, ct);
}
