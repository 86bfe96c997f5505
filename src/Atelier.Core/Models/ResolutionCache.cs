using Atelier.Core.Common;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Models;

/// <summary>Recent model resolutions (singleton), see <see cref="ModelResolver.ResolveAsync"/>; cleared when a token's checkpoint changes through this server.</summary>
public sealed class ResolutionCache(TimeProvider clock, IOptions<Security.AuthOptions> auth)
    : TtlCache<string, ResolvedModel>(clock, TimeSpan.FromSeconds(Math.Max(0, auth.Value.CacheSeconds)), 50_000, StringComparer.Ordinal);

/// <summary>
/// Recent listings of the LoRAs and embeddings a caller may use (singleton), see <see cref="ModelResolver.ResolveNetworksAsync"/>:
/// a submit reads none while the listing is fresh, so a tenant's queue pays nothing for prompts that name no network. A
/// network added is seen within the auth cache's seconds, as a revoked token is.
/// </summary>
public sealed class NetworkCache(TimeProvider clock, IOptions<Security.AuthOptions> auth)
    : TtlCache<string, IReadOnlyList<ResolvedModel>>(clock, TimeSpan.FromSeconds(Math.Max(0, auth.Value.CacheSeconds)), 10_000, StringComparer.Ordinal);
