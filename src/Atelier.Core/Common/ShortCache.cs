namespace Atelier.Core.Common;

/// <summary>
/// Per-replica memory of small, rarely changed settings read on every request (a tenant's safety rules, its
/// entitlements, an app's default webhook): a value is read again after 5 s, and forgotten at
/// once on this replica when it is saved here. Another replica sees a change within the lifetime.
/// </summary>
public sealed class ShortCache<T>(TimeProvider clock) : TtlCache<string, T>(clock, Lifetime, MaxEntries, StringComparer.Ordinal)
{
    private const int MaxEntries = 100_000;
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(5);
}
