using Atelier.Contracts.Errors;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Common;

public static class Saving
{
    /// <summary>
    /// Saves, turning a unique-index violation into the caller's domain error: two writers that both passed the
    /// "is the name free?" check meet the index, and the loser gets the same answer as a plain duplicate.
    /// </summary>
    public static async Task SaveOrDuplicateAsync(this AtelierDb db, Func<AtelierException> duplicate, CancellationToken ct)
    {
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException e) when (DbErrors.IsUniqueViolation(e))
        {
            throw duplicate();
        }
    }
}
