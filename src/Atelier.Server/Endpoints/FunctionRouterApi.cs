using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Core.Functions;
using Atelier.Runtime;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Diagnostics;
using Yarp.ReverseProxy.Forwarder;

namespace Atelier.Server.Endpoints;

/// <summary>
/// The router: <c>/fn/{service}/{function}[.{qualifier}]/{**path}</c> for every method. Authenticated like the API
/// (any credential of the tenant) unless one of the function's HTTP triggers is anonymous for the method (then the
/// service is named by its id). The request waits for a free instance slot, starting an instance from zero, up to
/// the function's timeout, and is forwarded with YARP; <c>X-Atelier-Invocation-Type: Async</c> queues it instead.
/// </summary>
public static class FunctionRouterApi
{
    public const string InvocationTypeHeader = "X-Atelier-Invocation-Type";

    public static IEndpointRouteBuilder MapFunctionRouter(this IEndpointRouteBuilder routes)
    {
        routes.Map("/fn/{service}/{function}/{**path}", Route).WithName("InvokeFunction").WithTags("Router").ExcludeFromDescription();
        routes.Map("/fn/{service}/{function}", Route).WithName("InvokeFunctionRoot").ExcludeFromDescription();
        // The open-function API's invoke: the same path through the router, the body forwarded to the instance's path.
        routes.MapPost("/api/v1/services/{service}/functions/{function}/invoke", Invoke).WithName("InvokeOpenFunction").WithTags("Functions")
            .RequireAccess(Access.TenantMember);
        routes.MapGet("/api/v1/services/{service}/functions/{function}/async-invocations/{invocationId}", GetAsyncInvocation).WithName("GetAsyncInvocation")
            .WithTags("Functions").RequireAccess(Access.TenantMember);
        routes.MapGet("/api/v1/services/{service}/functions/{function}/async-invocations", ListAsyncInvocations).WithName("ListAsyncInvocations")
            .WithTags("Functions").RequireAccess(Access.TenantMember);
        return routes;
    }

    public static async Task Route(HttpContext http, string service, string function, string? path)
    {
        var routing = http.RequestServices.GetRequiredService<FunctionRouting>();
        var f = AccessFilters.BearerOf(http.Request) is null
            ? await routing.FindAnonymousAsync(service, function, http.Request.Method, http.RequestAborted) : null;
        if (f is null)
        {
            await AccessFilters.AuthorizeAsync(http, Access.TenantOrSession);
            f = await routing.FindAsync(service, function, http.RequestAborted);
        }

        await InvokeAsync(http, f, function, "/" + (path ?? ""));
    }

    public static async Task Invoke(HttpContext http, string service, string function, string? path)
    {
        var routing = http.RequestServices.GetRequiredService<FunctionRouting>();
        var f = await routing.FindAsync(service, function, http.RequestAborted);
        var target = path ?? "/";
        await InvokeAsync(http, f, function, target.StartsWith('/') ? target : "/" + target, stripQuery: true);
    }

    /// <summary>Sends the request to the function (or queues it when async); shared with custom-domain routing.</summary>
    public static async Task InvokeAsync(HttpContext http, RoutedFunction f, string functionSegment, string path, bool stripQuery = false)
    {
        // The instance's own status codes are its answer: no envelope is written over them.
        if (http.Features.Get<IStatusCodePagesFeature>() is { } pages)
        {
            pages.Enabled = false;
        }

        var routing = http.RequestServices.GetRequiredService<FunctionRouting>();
        var qualifier = FunctionRouting.Split(functionSegment).Qualifier;
        if (string.Equals(http.Request.Headers[InvocationTypeHeader], "Async", StringComparison.OrdinalIgnoreCase))
        {
            FunctionRouting.RequireSynced(f);
            await QueueAsync(http, f, qualifier, path);
            return;
        }

        var target = await routing.TargetAsync(f, functionSegment, http.RequestAborted);
        IInstanceLease lease;
        try
        {
            lease = await target.Backend.AcquireAsync(target.Region, target.Key, target.Revision, target.Timeout, http.RequestAborted);
        }
        catch (RuntimeException e)
        {
            throw RuntimeFailures.Map(e, ErrorCatalog.s_function_invokeopenfunctionerror);
        }

        using (lease)
        {
            if (stripQuery)
            {
                http.Request.QueryString = QueryString.Empty;
            }

            var forwarder = http.RequestServices.GetRequiredService<FunctionForwarder>();
            var requestId = http.RequestServices.GetRequiredService<RequestContext>().RequestId;
            var error = await forwarder.ForwardAsync(http, lease, path, target.Timeout, requestId);
            if (error != ForwarderError.None && !http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested)
            {
                var cause = http.Features.Get<IForwarderErrorFeature>()?.Exception;
                throw new AtelierException(ErrorCatalog.s_function_invokeopenfunctionerror, errCode: "Instance" + error,
                    errMessage: $"instance {lease.InstanceId}: {cause?.GetType().Name ?? error.ToString()}", status: error == ForwarderError.RequestTimedOut ? 504 : 502);
            }
        }
    }

    private static async Task QueueAsync(HttpContext http, RoutedFunction f, string? qualifier, string path)
    {
        var invocations = http.RequestServices.GetRequiredService<AsyncInvocations>();
        var max = invocations.BodyMax;
        if (http.Request.ContentLength > max)
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"body: larger than {max} bytes" },
                errCode: ErrCodes.BodyTooLarge, status: 413);
        }

        using var body = new MemoryStream();
        var buffer = new byte[81920];
        int read;
        while ((read = await http.Request.Body.ReadAsync(buffer, http.RequestAborted)) > 0)
        {
            if (body.Length + read > max)
            {
                throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"body: larger than {max} bytes" },
                    errCode: ErrCodes.BodyTooLarge, status: 413);
            }

            body.Write(buffer, 0, read);
        }

        var inv = await invocations.EnqueueAsync(f, qualifier, http.Request.Method, path + http.Request.QueryString, http.Request.ContentType, body.ToArray(), http.RequestAborted);
        http.Response.StatusCode = StatusCodes.Status202Accepted;
        http.Response.Headers["X-Atelier-Invocation-Id"] = inv.Id;
        await http.Response.WriteAsJsonAsync(new Contracts.ApiResponse<Contracts.Functions.AsyncInvocationDto>(http.TraceIdentifier, true, inv));
    }

    public static async Task<IResult> GetAsyncInvocation(string service, string function, string invocationId, AsyncInvocations invocations, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await invocations.GetAsync(service, function, invocationId, ct));

    public static async Task<IResult> ListAsyncInvocations(string service, string function, int? pageNumber, int? pageSize, AsyncInvocations invocations, HttpContext http,
        CancellationToken ct) =>
        Reply.Ok(http, await invocations.ListAsync(service, function, PageRequest.From(pageNumber, pageSize), ct));
}
