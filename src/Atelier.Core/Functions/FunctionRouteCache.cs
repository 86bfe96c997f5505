using Atelier.Core.Common;
using Atelier.Runtime;

namespace Atelier.Core.Functions;

/// <summary>
/// What the router reads on every request, kept briefly: the function a (tenant, service, function) names, the
/// anonymous routes, and each region's backend with its opened kube config. Every change to functions, their
/// triggers or the regions on this replica clears it; other replicas see a change within <see cref="Lifetime"/>.
/// </summary>
public sealed class FunctionRouteCache(TimeProvider clock)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(2);

    internal TtlCache<string, RoutedFunction?> Functions { get; } = new(clock, Lifetime, 10_000, StringComparer.Ordinal);

    internal TtlCache<string, (RuntimeRegion Region, IRuntimeBackend Backend)> Regions { get; } = new(clock, TimeSpan.FromSeconds(10), 1_000, StringComparer.Ordinal);

    public void Clear()
    {
        Functions.Clear();
        Regions.Clear();
    }
}
