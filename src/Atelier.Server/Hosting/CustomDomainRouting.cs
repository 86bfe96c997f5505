using Atelier.Contracts.Errors;
using Atelier.Core.Functions;
using Atelier.Server.Auth;
using Atelier.Server.Endpoints;

namespace Atelier.Server.Hosting;

/// <summary>
/// A request whose <c>Host</c> is a mounted custom domain goes to that domain's function, path and all (the API is not
/// served on a tenant's domain). Authenticated like the router: a credential of the function's tenant, or none when
/// an HTTP trigger of the function is anonymous for the method. Other hosts pass through.
/// </summary>
public sealed class CustomDomainRouting(RequestDelegate next, DomainDirectory domains)
{
    public async Task InvokeAsync(HttpContext http)
    {
        var host = http.Request.Host.Host;
        if (string.IsNullOrEmpty(host) || !host.Contains('.', StringComparison.Ordinal) || await domains.RouteAsync(host.ToLowerInvariant()) is not { } route)
        {
            await next(http);
            return;
        }

        var routing = http.RequestServices.GetRequiredService<FunctionRouting>();
        var anonymous = AccessFilters.BearerOf(http.Request) is null;
        if (!anonymous)
        {
            await AccessFilters.AuthorizeAsync(http, Access.TenantOrSession);
        }

        var found = await routing.FindByDomainAsync(route, anonymous, http.Request.Method, http.RequestAborted);
        if (found is null)
        {
            if (anonymous)
            {
                await AccessFilters.AuthorizeAsync(http, Access.TenantOrSession); // answers 401 in the envelope
            }

            throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"host: {host} is not served to this caller" },
                status: 404, errCode: ErrCodes.FunctionNotFound, errMessage: host);
        }

        var segment = route.Qualifier is null ? found.Name : $"{found.Name}.{route.Qualifier}";
        await FunctionRouterApi.InvokeAsync(http, found, segment, http.Request.Path.Value ?? "/");
    }
}
