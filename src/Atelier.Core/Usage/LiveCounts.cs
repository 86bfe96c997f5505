using Atelier.Contracts.Jobs;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Usage;

/// <summary>What the operator gauges show now, across every tenant: queued jobs per agent and active sessions (two indexed counts).</summary>
public sealed class LiveCounts(AtelierDb db)
{
    public async Task<(IReadOnlyDictionary<string, long> QueuedPerAgent, long ActiveSessions)> ReadAsync(CancellationToken ct)
    {
        var queued = await db.Jobs.IgnoreQueryFilters().AsNoTracking().Where(j => j.State == JobStates.Queued).GroupBy(j => j.AgentId)
            .Select(g => new { Agent = g.Key, Count = g.LongCount() }).ToDictionaryAsync(g => g.Agent, g => g.Count, StringComparer.Ordinal, ct);
        var sessions = await db.Sessions.IgnoreQueryFilters().AsNoTracking().LongCountAsync(s => s.State == "active", ct);
        return (queued, sessions);
    }
}
