using Atelier.Contracts.Errors;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Common;

/// <summary>An agent named by a token or resource config (id or name, in the tenant in scope).</summary>
public static class AgentRefs
{
    /// <summary>The agent's id (null for none); an agent that does not exist is refused (404).</summary>
    public static async Task<string?> IdAsync(AtelierDb db, string? agentRef, CancellationToken ct) =>
        agentRef is null ? null
            : await db.Agents.AsNoTracking().Where(a => a.Id == agentRef || a.Name == agentRef).Select(a => a.Id).FirstOrDefaultAsync(ct)
              ?? throw AtelierException.InvalidInput("agentId", $"agent {agentRef} does not exist", 404);
}
