namespace Atelier.Server.Auth;

/// <summary>Who may call a route, checked in this order: credential (401), scope (403), tenant (400/403/404), operator (400).</summary>
public enum Access
{
    /// <summary>The platform admin key only.</summary>
    Platform,
    /// <summary>A tenant admin token, or the platform admin naming the tenant.</summary>
    TenantAdmin,
    /// <summary>Any token of the tenant (admin or app scope), or the platform admin naming the tenant.</summary>
    TenantMember,
    /// <summary>An end user's session credential (<c>ats_…</c>).</summary>
    Session,
    /// <summary>Any credential of the tenant: a token, a session, or the platform admin naming the tenant.</summary>
    TenantOrSession,
    /// <summary>The platform admin key (no tenant needed), or a tenant admin token: shared platform objects a tenant builds on (function templates).</summary>
    AnyAdmin,
    /// <summary>A worker key (<c>atw_…</c>): the worker protocol only.</summary>
    Worker,
    /// <summary>Any token of the tenant, or the platform admin naming a tenant or none (then it acts across every tenant: usage).</summary>
    TenantMemberOrPlatform,
}
