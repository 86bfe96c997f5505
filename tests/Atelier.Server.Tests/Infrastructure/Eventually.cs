namespace Atelier.Server.Tests.Infrastructure;

/// <summary>
/// Waits for a condition with a deadline: the one way tests wait. The deadline is generous (a loaded machine may be
/// slow); what a test asserts is the condition, never how long it took.
/// </summary>
public static class Eventually
{
    public static readonly TimeSpan DefaultDeadline = TimeSpan.FromSeconds(60);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test with <paramref name="what"/> at the deadline.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? deadline = null, TimeSpan? every = null)
    {
        var end = DateTime.UtcNow + (deadline ?? DefaultDeadline);
        var pause = every ?? TimeSpan.FromMilliseconds(50);
        while (true)
        {
            if (await condition())
            {
                return;
            }

            if (DateTime.UtcNow > end)
            {
                Assert.Fail($"{what}: not so after {(deadline ?? DefaultDeadline).TotalSeconds:0} s");
            }

            await Task.Delay(pause);
        }
    }

    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? deadline = null, TimeSpan? every = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, deadline, every);

    /// <summary>Polls <paramref name="read"/> until <paramref name="done"/> holds for its value, and returns that value.</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T>> read, Func<T, bool> done, string what, TimeSpan? deadline = null, TimeSpan? every = null)
    {
        var end = DateTime.UtcNow + (deadline ?? DefaultDeadline);
        var pause = every ?? TimeSpan.FromMilliseconds(50);
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow > end)
            {
                Assert.Fail($"{what}: not so after {(deadline ?? DefaultDeadline).TotalSeconds:0} s (last value: {value})");
            }

            await Task.Delay(pause);
        }
    }
}
