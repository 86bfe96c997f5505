using System.Collections.Concurrent;
using System.Text.Json;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Jobs;

/// <summary>
/// Registered workers as the lease path reads them: cached for a few seconds, and their hot request info written back
/// only when it changed or the last write is older than <see cref="SeenWriteInterval"/> (a lease is not a write).
/// </summary>
public sealed class WorkerRegistry(TimeProvider clock)
{
    private static readonly TimeSpan SeenWriteInterval = TimeSpan.FromSeconds(10);
    private readonly TtlCache<string, WorkerNode> _nodes = new(clock, TimeSpan.FromSeconds(5), 10_000, StringComparer.Ordinal);

    public async Task<WorkerNode?> GetAsync(AtelierDb db, string id, CancellationToken ct)
    {
        if (_nodes.TryGet(id, out var known))
        {
            return known;
        }

        var node = await db.Workers.AsNoTracking().FirstOrDefaultAsync(w => w.Id == id, ct);
        if (node is not null)
        {
            _nodes.Set(id, node);
        }

        return node;
    }

    public static async Task SeenAsync(AtelierDb db, WorkerNode node, IReadOnlyList<string?> hot, DateTime now, CancellationToken ct)
    {
        var json = JsonSerializer.Serialize(hot);
        if (json == node.HotJson && now - node.LastSeenAt < SeenWriteInterval)
        {
            return;
        }

        node.HotJson = json;
        node.LastSeenAt = now;
        await db.Workers.Where(w => w.Id == node.Id).ExecuteUpdateAsync(u => u.SetProperty(w => w.HotJson, json).SetProperty(w => w.LastSeenAt, now), ct);
    }

    public void Forget(string id) => _nodes.Remove(id);

    /// <summary>Forgets every cached worker of a key (it was revoked).</summary>
    public void ForgetKey(string keyId) => _nodes.RemoveWhere(n => n.KeyId == keyId);

    private readonly ConcurrentDictionary<string, (string Lane, string? Model)> _waiting = new();

    /// <summary>Marks a slot as waiting in a lease request (on this replica) in its lane with the model it holds, until disposed.</summary>
    public IDisposable Wait(string slot, string lane, string? model)
    {
        _waiting[slot] = (lane, model);
        return new Waiting(this, slot);
    }

    private readonly ConcurrentDictionary<string, byte> _parked = new();

    /// <summary>
    /// Marks a slot as parked, until disposed: its lease request looked at the queue, found nothing, and waits for a wake
    /// or its next look. A slot is in <see cref="Wait"/> from before its first look, so it may still be looking.
    /// </summary>
    public IDisposable Park(string slot)
    {
        _parked[slot] = 0;
        return new Parked(this, slot);
    }

    /// <summary>
    /// Whether a slot (<c>workerId/slot</c>) is parked in a lease request on this replica now: it has looked at the queue
    /// and waits, so a job queued from now on is found by a wake, not by a look already under way.
    /// </summary>
    public bool IsWaiting(string slot) => _parked.ContainsKey(slot);

    /// <summary>The models other waiting slots of the same lane hold (and this one does not): their jobs are theirs to take.</summary>
    public IReadOnlyCollection<string> HeldByOthers(string slot, string lane, string? mine) =>
        [.. _waiting.Where(w => w.Key != slot && w.Value.Lane == lane && w.Value.Model is not null && w.Value.Model != mine).Select(w => w.Value.Model!).Distinct()];

    private sealed class Waiting(WorkerRegistry registry, string slot) : IDisposable
    {
        public void Dispose() => registry._waiting.TryRemove(slot, out _);
    }

    private sealed class Parked(WorkerRegistry registry, string slot) : IDisposable
    {
        public void Dispose() => registry._parked.TryRemove(slot, out _);
    }
}
