using Atelier.Contracts.Errors;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Runtime;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Functions;

/// <summary>
/// The runtime backends registered in this process (chosen per region by name) and the regions that use them: a
/// region name becomes the <see cref="RuntimeRegion"/> a backend needs, with its kube config opened.
/// </summary>
public sealed class RuntimeRegions(AtelierDb db, IEnumerable<IRuntimeBackend> backends, MasterKeys keys, FunctionRouteCache cache)
{
    public const string DefaultRegion = "local";

    private readonly Dictionary<string, IRuntimeBackend> _backends = backends.ToDictionary(b => b.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<string> BackendNames => _backends.Keys;

    public IRuntimeBackend Backend(string name) =>
        _backends.TryGetValue(name, out var backend) ? backend
            : throw AtelierException.InvalidInput("backend", $"unknown backend '{name}'; known: {string.Join(", ", _backends.Keys.Order(StringComparer.Ordinal))}");

    /// <summary>The region's runtime view and backend; <c>b_kube_kubeconfignotexist</c> when its kube config is gone.</summary>
    public Task<(RuntimeRegion Region, IRuntimeBackend Backend)> ResolveAsync(string regionName, CancellationToken ct) =>
        cache.Regions.GetOrAddAsync(regionName, () => LoadAsync(regionName, ct));

    private async Task<(RuntimeRegion Region, IRuntimeBackend Backend)> LoadAsync(string regionName, CancellationToken ct)
    {
        var region = await db.Regions.AsNoTracking().FirstOrDefaultAsync(r => r.Name == regionName, ct)
                     ?? throw AtelierException.InvalidInput("region", $"region '{regionName}' does not exist");
        string? config = null;
        if (region.KubeConfigId is { } kcId)
        {
            var kc = await db.KubeConfigs.AsNoTracking().FirstOrDefaultAsync(k => k.Id == kcId, ct)
                     ?? throw new AtelierException(ErrorCatalog.b_kube_kubeconfignotexist, errCode: ErrCodes.KubeConfigNotFound, errMessage: kcId);
            config = SecretSeal.TryOpen(keys, KeyPurpose.RuntimeSecrets, kc.ConfigCipher, out var text) ? text
                : throw new AtelierException(ErrorCatalog.s_common_globalexception, errCode: ErrCodes.SecretKeyUnavailable,
                    errMessage: "the kube config was sealed with a master key this server does not have");
        }
        else if (region.Backend == "kubernetes")
        {
            throw new AtelierException(ErrorCatalog.b_kube_kubeconfignotexist, errCode: ErrCodes.KubeConfigNotFound, errMessage: $"region {region.Name} names no kube config");
        }

        return (new RuntimeRegion(region.Name, region.Backend, config, region.Namespace), Backend(region.Backend));
    }
}
