using Atelier.Core.Common;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Models;

/// <summary>Recent model resolutions (singleton), see <see cref="ModelResolver.ResolveAsync"/>; cleared when a token's checkpoint changes through this server.</summary>
public sealed class ResolutionCache(TimeProvider clock, IOptions<Security.AuthOptions> auth)
    : TtlCache<string, ResolvedModel>(clock, TimeSpan.FromSeconds(Math.Max(0, auth.Value.CacheSeconds)), 50_000, StringComparer.Ordinal);
