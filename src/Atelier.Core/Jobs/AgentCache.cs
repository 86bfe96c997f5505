using Atelier.Core.Common;
using Atelier.Data.Entities;

namespace Atelier.Core.Jobs;

/// <summary>Agents by tenant and id or name (singleton), see <see cref="JobService.FindAgentAsync"/>: kept 30 s (a deleted agent is dropped at once on the replica that deleted it).</summary>
public sealed class AgentCache(TimeProvider clock) : TtlCache<string, Agent>(clock, TimeSpan.FromSeconds(30), 100_000, StringComparer.Ordinal);
