using System.Collections.Concurrent;

namespace Atelier.Core.Common;

/// <summary>
/// Per-replica memory of small, rarely changed settings read on every request (a tenant's safety rules, its
/// entitlements, an app's default webhook): a value is read again after 5 s, and forgotten at
/// once on this replica when it is saved here. Another replica sees a change within the lifetime.
/// </summary>
public sealed class ShortCache<T>
{
    private const int MaxEntries = 100_000;
    private readonly ConcurrentDictionary<string, (T Value, DateTime ReadAt)> _items = new(StringComparer.Ordinal);

    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(5);

    public async Task<T> GetAsync(string key, Func<Task<T>> load)
    {
        if (_items.TryGetValue(key, out var known) && DateTime.UtcNow - known.ReadAt < Lifetime)
        {
            return known.Value;
        }

        var value = await load();
        if (_items.Count >= MaxEntries)
        {
            _items.Clear();
        }

        _items[key] = (value, DateTime.UtcNow);
        return value;
    }

    public void Forget(string key) => _items.TryRemove(key, out _);
}
