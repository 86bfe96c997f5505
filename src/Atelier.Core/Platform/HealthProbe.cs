using Atelier.Data;
using Atelier.Storage;

namespace Atelier.Core.Platform;

/// <summary>What readiness looks at: the database answers, the object store answers, and the storage disk keeps its reserve.</summary>
public sealed class HealthProbe(AtelierDb db, StorageSpace space, IObjectStore store)
{
    public Task<bool> DatabaseAnswersAsync(CancellationToken ct) => db.Database.CanConnectAsync(ct);

    /// <summary>True when the object store answers a lookup (of a key that need not exist).</summary>
    public async Task<bool> StorageAnswersAsync(CancellationToken ct)
    {
        try
        {
            await store.SizeAsync("health/probe", ct);
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>True when the storage disk has less free space than it must keep; <paramref name="free"/> says how much it has.</summary>
    public bool StorageIsLow(out long free) => space.IsLow(out free);

    /// <summary>The free space the storage disk must keep.</summary>
    public long MinFreeBytes => space.MinFreeBytes;
}
