using Atelier.Core.Common;
using Atelier.Data.Entities;

namespace Atelier.Core.Jobs;

/// <summary>Agents by tenant and id or name (singleton), see <see cref="JobService.FindAgentAsync"/>: kept, not read again.</summary>
public sealed class AgentCache(TimeProvider clock) : TtlCache<string, Agent>(clock, Timeout.InfiniteTimeSpan, 100_000, StringComparer.Ordinal);
