using Atelier.Core.Common;
using Microsoft.Extensions.Time.Testing;

namespace Atelier.Core.Tests.Common;

public class TtlCacheTests
{
    private readonly FakeTimeProvider _clock = new(new DateTimeOffset(2026, 11, 27, 8, 0, 0, TimeSpan.Zero));

    private TtlCache<string, int> Cache(TimeSpan lifetime, int capacity = 100) => new(_clock, lifetime, capacity, StringComparer.Ordinal);

    [Fact]
    public void TryGet_WithinTheLifetime_Hits_AtItsEnd_Misses()
    {
        var cache = Cache(TimeSpan.FromSeconds(5));
        cache.Set("a", 1);
        _clock.Advance(TimeSpan.FromSeconds(5) - TimeSpan.FromTicks(1));
        Assert.True(cache.TryGet("a", out var hit));
        Assert.Equal(1, hit);
        _clock.Advance(TimeSpan.FromTicks(1));
        Assert.False(cache.TryGet("a", out _));
    }

    [Fact]
    public async Task GetOrAddAsync_Cached_DoesNotLoad_Expired_LoadsAgain()
    {
        var cache = Cache(TimeSpan.FromSeconds(5));
        var loads = 0;
        Task<int> Load() => Task.FromResult(++loads * 10);

        Assert.Equal(10, await cache.GetOrAddAsync("a", Load));
        _clock.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(10, await cache.GetOrAddAsync("a", Load));
        Assert.Equal(1, loads);
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(20, await cache.GetOrAddAsync("a", Load));
        Assert.Equal(2, loads);
    }

    [Fact]
    public async Task GetOrAddAsync_LoadThrows_NothingIsKept()
    {
        var cache = Cache(TimeSpan.FromSeconds(5));
        await Assert.ThrowsAsync<InvalidOperationException>(() => cache.GetOrAddAsync("a", () => throw new InvalidOperationException("no such row")));
        Assert.Equal(0, cache.Count);
        Assert.Equal(7, await cache.GetOrAddAsync("a", () => Task.FromResult(7)));
    }

    [Fact]
    public void Remove_LiveEntry_IsForgottenAtOnce_OthersStay()
    {
        var cache = Cache(TimeSpan.FromMinutes(1));
        cache.Set("a", 1);
        cache.Set("b", 2);
        Assert.True(cache.Remove("a"));
        Assert.False(cache.TryGet("a", out _));
        Assert.True(cache.TryGet("b", out _));
        Assert.False(cache.Remove("a"));
    }

    [Fact]
    public void RemoveWhere_MatchingValues_AreForgotten_OthersStay()
    {
        var cache = Cache(TimeSpan.FromMinutes(1));
        for (var i = 0; i < 10; i++)
        {
            cache.Set($"k{i}", i);
        }

        cache.RemoveWhere(v => v % 2 == 0);
        Assert.Equal(5, cache.Count);
        Assert.All(Enumerable.Range(0, 10), i => Assert.Equal(i % 2 == 1, cache.TryGet($"k{i}", out _)));
    }

    [Fact]
    public void Clear_LiveEntries_AllForgotten()
    {
        var cache = Cache(TimeSpan.FromMinutes(1));
        cache.Set("a", 1);
        cache.Set("b", 2);
        cache.Clear();
        Assert.Equal(0, cache.Count);
        Assert.False(cache.TryGet("a", out _));
    }

    [Fact]
    public void Set_ZeroLifetime_KeepsNothing()
    {
        var cache = Cache(TimeSpan.Zero);
        cache.Set("a", 1);
        Assert.Equal(0, cache.Count);
        Assert.False(cache.TryGet("a", out _));
    }

    [Fact]
    public void TryGet_InfiniteLifetime_HitsForever()
    {
        var cache = Cache(Timeout.InfiniteTimeSpan);
        cache.Set("a", 1);
        _clock.Advance(TimeSpan.FromDays(3650));
        Assert.True(cache.TryGet("a", out var hit));
        Assert.Equal(1, hit);
    }

    [Fact]
    public void Set_FullOfExpiredEntries_DropsOnlyTheExpired()
    {
        var cache = Cache(TimeSpan.FromSeconds(5), capacity: 10);
        for (var i = 0; i < 6; i++)
        {
            cache.Set($"old{i}", i);
        }

        _clock.Advance(TimeSpan.FromSeconds(5));
        for (var i = 0; i < 4; i++)
        {
            cache.Set($"new{i}", i);
        }

        cache.Set("one-more", 99);
        Assert.Equal(5, cache.Count);
        Assert.All(Enumerable.Range(0, 4), i => Assert.True(cache.TryGet($"new{i}", out _)));
        Assert.True(cache.TryGet("one-more", out _));
    }

    [Fact]
    public void Set_FullOfLiveEntries_DropsTheOldestTenth_NeverGrowsPastTheCapacity()
    {
        var cache = Cache(Timeout.InfiniteTimeSpan, capacity: 100);
        for (var i = 0; i < 100; i++)
        {
            cache.Set($"k{i}", i);
            _clock.Advance(TimeSpan.FromMilliseconds(1));
        }

        cache.Set("k100", 100);
        Assert.Equal(91, cache.Count);
        Assert.All(Enumerable.Range(0, 10), i => Assert.False(cache.TryGet($"k{i}", out _)));
        Assert.All(Enumerable.Range(10, 91), i => Assert.True(cache.TryGet($"k{i}", out _)));

        for (var i = 101; i < 1000; i++)
        {
            cache.Set($"k{i}", i);
            Assert.InRange(cache.Count, 1, 100);
        }
    }

    [Fact]
    public void Set_ExistingKeyInAFullCache_ReplacesWithoutEvicting()
    {
        var cache = Cache(Timeout.InfiniteTimeSpan, capacity: 3);
        cache.Set("a", 1);
        cache.Set("b", 2);
        cache.Set("c", 3);
        cache.Set("b", 20);
        Assert.Equal(3, cache.Count);
        Assert.True(cache.TryGet("b", out var b));
        Assert.Equal(20, b);
    }
}
