using Atelier.Contracts.Errors;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Core.Security;

namespace Atelier.Server.Auth;

public static class AccessFilters
{
    public const string TenantHeader = "X-Tenant-Id";
    public const string OperatorHeader = "X-Operator-Id";

    /// <summary>Puts the access check in front of every route of the group.</summary>
    public static TBuilder RequireAccess<TBuilder>(this TBuilder builder, Access access) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (ic, next) =>
        {
            await CheckAsync(ic.HttpContext, access);
            return await next(ic);
        });

    /// <summary>The same check for a handler that decides for itself whether a credential is needed (the function router).</summary>
    public static Task AuthorizeAsync(HttpContext http, Access access) => CheckAsync(http, access);

    private static async Task CheckAsync(HttpContext http, Access access)
    {
        var services = http.RequestServices;
        var ctx = services.GetRequiredService<RequestContext>();
        var auth = services.GetRequiredService<Authenticator>();
        var limits = services.GetRequiredService<RateLimits>();
        var caller = ctx.Caller ??= await AuthenticateAsync(http, auth, limits);
        // Once per request, even where a group's filter and a route's both run.
        var first = http.Items.TryAdd(typeof(RateLimits), true);
        if (first && caller.Kind != CallerKind.Worker)
        {
            limits.TakeCredential(caller.CredentialId);
        }

        var allowed = access switch
        {
            Access.Platform => caller.IsPlatformAdmin,
            Access.AnyAdmin => caller.IsPlatformAdmin || caller.Has(TokenScope.Admin),
            Access.TenantAdmin => caller.Has(TokenScope.Admin),
            Access.Session => caller.Kind == CallerKind.Session,
            Access.TenantOrSession => caller.Kind != CallerKind.Worker,
            Access.Worker => caller.Kind == CallerKind.Worker,
            _ => caller.IsPlatformAdmin || caller.Scopes.Count > 0,
        };
        if (!allowed)
        {
            throw new AtelierException(ErrorCatalog.b_session_tokenforbidden, errCode: ErrCodes.Scope,
                errMessage: access switch
                {
                    Access.Platform => "needs the platform admin key",
                    Access.Session => "needs a session credential",
                    Access.Worker => "needs a worker key",
                    Access.TenantAdmin or Access.AnyAdmin => "needs a token with the admin scope",
                    _ => "needs an API token of the tenant",
                });
        }

        if (access is not (Access.Platform or Access.Worker) && !(access == Access.AnyAdmin && caller.IsPlatformAdmin)
            && !(access == Access.TenantMemberOrPlatform && caller.IsPlatformAdmin && !NamedTenant(http.Request).Present))
        {
            var (named, present) = NamedTenant(http.Request);
            var tenantId = await auth.EnterTenantAsync(ctx, caller, named, present, http.RequestAborted);
            if (first && caller.Kind is CallerKind.Token or CallerKind.Session)
            {
                limits.TakeTenant(tenantId);
            }
        }

        if (access is Access.Platform or Access.TenantAdmin && !HttpMethods.IsGet(http.Request.Method) && !HttpMethods.IsHead(http.Request.Method))
        {
            var op = http.Request.Headers[OperatorHeader].ToString();
            if (string.IsNullOrWhiteSpace(op))
            {
                throw new AtelierException(ErrorCatalog.b_operator_invalidoperatoridnul);
            }

            ctx.OperatorId = Validate.Identifier(op, OperatorHeader);
            if (access == Access.TenantAdmin && !caller.IsPlatformAdmin)
            {
                await auth.CheckRegisteredOperatorAsync(ctx.OperatorId, OperatorHeader, http.RequestAborted);
            }
        }
    }

    /// <summary>
    /// Verifies the request's credential. A client address past its refused credentials is answered 429 before any
    /// lookup; each refused well-formed credential (401) counts against its address. Junk is not counted: its checksum
    /// refuses it without any lookup, so it costs nothing and guesses nothing.
    /// </summary>
    private static async Task<Caller> AuthenticateAsync(HttpContext http, Authenticator auth, RateLimits limits)
    {
        var secret = BearerOf(http.Request);
        var presented = !string.IsNullOrWhiteSpace(secret);
        if (presented)
        {
            limits.CheckAddress(http.Connection.RemoteIpAddress);
        }

        try
        {
            return await auth.AuthenticateAsync(secret, http.RequestAborted);
        }
        catch (AtelierException e) when (presented && e.Status == StatusCodes.Status401Unauthorized && WellFormed(secret!))
        {
            limits.CountFailedAuth(http.Connection.RemoteIpAddress);
            throw;
        }
    }

    private static bool WellFormed(string secret) =>
        Secrets.IsWellFormed(secret, Secrets.TokenPrefix) || Secrets.IsWellFormed(secret, Secrets.SessionPrefix)
        || Secrets.IsWellFormed(secret, Secrets.PlatformKeyPrefix) || Secrets.IsWellFormed(secret, Secrets.WorkerKeyPrefix);

    private static (string? Value, bool Present) NamedTenant(HttpRequest request)
    {
        if (request.Headers.TryGetValue(TenantHeader, out var header))
        {
            return (header.ToString(), true);
        }

        if (request.Query.TryGetValue("tenantId", out var query))
        {
            return (query.ToString(), true);
        }

        return (null, false);
    }

    /// <summary>
    /// The secret of <c>Authorization: Bearer …</c>, or of <c>Basic</c> (the password, else the user name) for the
    /// AUTOMATIC1111 clients that only know <c>--api-auth user:password</c>; null when absent or of another scheme.
    /// </summary>
    public static string? BearerOf(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string bearer = "Bearer ";
        const string basic = "Basic ";
        if (header.StartsWith(bearer, StringComparison.OrdinalIgnoreCase))
        {
            return header[bearer.Length..].Trim();
        }

        if (!header.StartsWith(basic, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        var encoded = header[basic.Length..].Trim();
        var buffer = new byte[(encoded.Length * 3 / 4) + 3];
        if (!Convert.TryFromBase64String(encoded, buffer, out var length))
        {
            return "";
        }

        var pair = System.Text.Encoding.UTF8.GetString(buffer, 0, length);
        var colon = pair.IndexOf(':', StringComparison.Ordinal);
        var (user, password) = colon < 0 ? (pair, "") : (pair[..colon], pair[(colon + 1)..]);
        return password.Length > 0 ? password : user;
    }
}
