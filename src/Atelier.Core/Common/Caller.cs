using Atelier.Contracts.Identity;

namespace Atelier.Core.Common;

public enum CallerKind { PlatformAdmin, Token, Session, Worker }

/// <summary>Who is calling, as proven by the credential of the request.</summary>
public sealed record Caller(CallerKind Kind, string CredentialId, string? TenantId, string? AppId, IReadOnlyList<TokenScope> Scopes)
{
    /// <summary>For a session credential: the session's role.</summary>
    public string? RoleId { get; init; }

    public bool IsPlatformAdmin => Kind == CallerKind.PlatformAdmin;
    public bool Has(TokenScope scope) => IsPlatformAdmin || Scopes.Contains(scope);
}

/// <summary>What one request carries through the layers: its id, its caller, its operator, its tenant.</summary>
public sealed class RequestContext
{
    /// <summary>Our id of the request (always made by the server; the one in the envelope and the audit log).</summary>
    public string RequestId { get; set; } = "";
    /// <summary>The id the client sent in <c>X-Request-Id</c>, when sane: kept beside ours, never instead of it.</summary>
    public string? ClientRequestId { get; set; }
    public Caller? Caller { get; set; }
    /// <summary>The operator named by the request (the person acting), required on every mutating admin call.</summary>
    public string? OperatorId { get; set; }
    /// <summary>The tenant the request acts in, once resolved.</summary>
    public string? TenantId { get; set; }
    public bool English { get; set; }
}
