using System.Collections.Concurrent;

namespace Atelier.Core.Common;

/// <summary>
/// The one in-memory cache of this server: values kept for a lifetime measured on the injected <see cref="TimeProvider"/>
/// (so tests move it with a fake clock), forgotten at once by <see cref="Remove"/>, <see cref="RemoveWhere"/> or
/// <see cref="Clear"/> when what they stand for changes on this replica, and at most <c>capacity</c> of them: a full
/// cache first drops what has expired, then the oldest tenth. Per replica; another replica sees a change within the
/// lifetime. Loads are not deduplicated: two requests that miss at once both read (the caches hold cheap reads).
/// </summary>
public class TtlCache<TKey, TValue> where TKey : notnull
{
    private readonly TimeProvider _clock;
    private readonly TimeSpan _lifetime;
    private readonly int _capacity;
    private readonly ConcurrentDictionary<TKey, Entry> _entries;
    private readonly Lock _trimming = new();

    /// <param name="lifetime">How long a value is served; <see cref="Timeout.InfiniteTimeSpan"/> for values that never change
    /// (they are still bounded), zero or less to cache nothing.</param>
    /// <param name="capacity">The most entries kept.</param>
    public TtlCache(TimeProvider clock, TimeSpan lifetime, int capacity, IEqualityComparer<TKey>? comparer = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _clock = clock;
        _lifetime = lifetime;
        _capacity = capacity;
        _entries = new ConcurrentDictionary<TKey, Entry>(comparer ?? EqualityComparer<TKey>.Default);
    }

    public int Count => _entries.Count;

    public bool TryGet(TKey key, out TValue value)
    {
        if (_entries.TryGetValue(key, out var entry) && entry.Until > _clock.GetTimestamp())
        {
            value = entry.Value;
            return true;
        }

        value = default!;
        return false;
    }

    /// <summary>Keeps a value for the cache's lifetime (a cache with no lifetime keeps nothing).</summary>
    public void Set(TKey key, TValue value)
    {
        if (_lifetime <= TimeSpan.Zero && _lifetime != Timeout.InfiniteTimeSpan)
        {
            return;
        }

        var now = _clock.GetTimestamp();
        var until = _lifetime == Timeout.InfiniteTimeSpan ? long.MaxValue : now + (long)(_lifetime.TotalSeconds * _clock.TimestampFrequency);
        if (_entries.Count >= _capacity && !_entries.ContainsKey(key))
        {
            Trim(now);
        }

        _entries[key] = new Entry(value, now, until);
    }

    /// <summary>The cached value, or what <paramref name="load"/> reads, kept from now on.</summary>
    public async Task<TValue> GetOrAddAsync(TKey key, Func<Task<TValue>> load)
    {
        if (TryGet(key, out var known))
        {
            return known;
        }

        var value = await load();
        Set(key, value);
        return value;
    }

    public bool Remove(TKey key) => _entries.TryRemove(key, out _);

    /// <summary>Forgets every value that <paramref name="match"/> picks (all the tokens of an app, say).</summary>
    public void RemoveWhere(Func<TValue, bool> match)
    {
        foreach (var (key, entry) in _entries)
        {
            if (match(entry.Value))
            {
                _entries.TryRemove(new KeyValuePair<TKey, Entry>(key, entry));
            }
        }
    }

    public void Clear() => _entries.Clear();

    private void Trim(long now)
    {
        lock (_trimming)
        {
            if (_entries.Count < _capacity)
            {
                return; // another writer trimmed meanwhile
            }

            foreach (var (key, entry) in _entries)
            {
                if (entry.Until <= now)
                {
                    _entries.TryRemove(new KeyValuePair<TKey, Entry>(key, entry));
                }
            }

            var over = _entries.Count - _capacity + 1;
            if (over <= 0)
            {
                return;
            }

            // Still full of live values: drop the oldest tenth at once, so the next writes do not each pay for a sort.
            foreach (var (key, entry) in _entries.OrderBy(e => e.Value.Added).Take(Math.Max(over, _capacity / 10)).ToList())
            {
                _entries.TryRemove(new KeyValuePair<TKey, Entry>(key, entry));
            }
        }
    }

    /// <summary>Compared by reference: a removal takes out the entry it looked at, never one written since.</summary>
    private sealed class Entry(TValue value, long added, long until)
    {
        public TValue Value { get; } = value;
        public long Added { get; } = added;
        public long Until { get; } = until;
    }
}
