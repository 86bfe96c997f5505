using Atelier.Contracts;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Common;

public static class PagingExtensions
{
    /// <summary>Counts and takes one page of an already ordered query.</summary>
    public static async Task<Page<TOut>> ToPageAsync<TIn, TOut>(this IQueryable<TIn> ordered, PageRequest page,
        Func<TIn, TOut> map, CancellationToken ct)
    {
        var total = await ordered.LongCountAsync(ct);
        var rows = await ordered.Skip(page.Skip).Take(page.PageSize).ToListAsync(ct);
        return new Page<TOut>([.. rows.Select(map)], page.PageNumber, page.PageSize, total);
    }
}
