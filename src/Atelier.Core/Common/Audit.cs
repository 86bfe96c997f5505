using Atelier.Contracts.Errors;
using Atelier.Data;
using Atelier.Data.Entities;

namespace Atelier.Core.Common;

/// <summary>Adds the audit entry of a mutating admin call to the same unit of work as the change itself.</summary>
public static class Audit
{
    public static void Record(AtelierDb db, RequestContext ctx, TimeProvider clock, string action, string resourceType,
        string resourceId, string? tenantId)
    {
        if (string.IsNullOrWhiteSpace(ctx.OperatorId))
        {
            throw new AtelierException(ErrorCatalog.b_operator_invalidoperatoridnul);
        }

        db.AuditLog.Add(new AuditEntry
        {
            Id = Ids.New("aud", clock),
            TenantId = tenantId,
            OperatorId = ctx.OperatorId,
            Action = action,
            ResourceType = resourceType,
            ResourceId = resourceId,
            CredentialId = ctx.Caller?.CredentialId ?? "",
            RequestId = ctx.RequestId,
            ClientRequestId = ctx.ClientRequestId,
            At = clock.GetUtcNow().UtcDateTime,
        });
    }
}
