using Atelier.Data;
using Atelier.Storage;

namespace Atelier.Core.Platform;

/// <summary>What readiness looks at: the database answers, and the storage disk keeps its reserve.</summary>
public sealed class HealthProbe(AtelierDb db, StorageSpace space)
{
    public Task<bool> DatabaseAnswersAsync(CancellationToken ct) => db.Database.CanConnectAsync(ct);

    /// <summary>True when the storage disk has less free space than it must keep; <paramref name="free"/> says how much it has.</summary>
    public bool StorageIsLow(out long free) => space.IsLow(out free);

    /// <summary>The free space the storage disk must keep.</summary>
    public long MinFreeBytes => space.MinFreeBytes;
}
