using Atelier.Contracts;
using Atelier.Contracts.Functions;
using Atelier.Core.Common;
using Atelier.Core.Functions;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>A tenant's services and functions: by template, the open-function API, and everything hanging off a function.</summary>
public static class FunctionsApi
{
    public static IEndpointRouteBuilder MapFunctionsApi(this IEndpointRouteBuilder routes)
    {
        var services = routes.MapGroup("/api/v1/services").WithTags("Functions").RequireAccess(Access.TenantAdmin);
        services.MapPost("/", CreateService).WithName("CreateService");
        services.MapGet("/", ListServices).WithName("ListServices");
        services.MapGet("/{service}", GetService).WithName("GetService");
        services.MapDelete("/{service}", DeleteService).WithName("DeleteService");

        var fns = services.MapGroup("/{service}/functions");
        fns.MapPost("/by-template", CreateByTemplate).WithName("CreateFunctionByTemplate");
        fns.MapPut("/{function}/by-template", UpdateByTemplate).WithName("UpdateFunctionByTemplate");
        fns.MapDelete("/{function}/by-template", DeleteByTemplate).WithName("DeleteFunctionByTemplate");
        fns.MapPost("/", CreateOpen).WithName("CreateOpenFunction");
        fns.MapGet("/", ListFunctions).WithName("ListOpenFunctions");
        fns.MapGet("/{function}", GetFunction).WithName("GetFunction");
        fns.MapPut("/{function}", UpdateOpen).WithName("UpdateOpenFunction");
        fns.MapDelete("/{function}", DeleteOpen).WithName("DeleteOpenFunction");
        fns.MapPost("/{function}/scale", Scale).WithName("ScaleOpenFunction");

        fns.MapPost("/{function}/versions", PublishVersion).WithName("PublishFunctionVersion");
        fns.MapGet("/{function}/versions", ListVersions).WithName("ListFunctionVersions");
        fns.MapPost("/{function}/aliases", CreateAlias).WithName("CreateAlias");
        fns.MapGet("/{function}/aliases", ListAliases).WithName("ListAliases");
        fns.MapPut("/{function}/aliases/{alias}", UpdateAlias).WithName("UpdateAlias");
        fns.MapDelete("/{function}/aliases/{alias}", DeleteAlias).WithName("DeleteAlias");
        fns.MapPost("/{function}/triggers", CreateTrigger).WithName("CreateTrigger");
        fns.MapGet("/{function}/triggers", ListTriggers).WithName("ListTriggers");
        fns.MapDelete("/{function}/triggers/{trigger}", DeleteTrigger).WithName("DeleteTrigger");
        fns.MapPut("/{function}/async-invoke-config", PutAsyncConfig).WithName("PutAsyncInvokeConfig");
        fns.MapGet("/{function}/async-invoke-config", GetAsyncConfig).WithName("GetAsyncInvokeConfig");
        fns.MapDelete("/{function}/async-invoke-config", DeleteAsyncConfig).WithName("DeleteAsyncInvokeConfig");
        fns.MapPut("/{function}/provision-config", PutProvision).WithName("PutProvisionConfig");
        fns.MapGet("/{function}/provision-config", GetProvision).WithName("GetProvisionConfig");
        fns.MapDelete("/{function}/provision-config", DeleteProvision).WithName("DeleteProvisionConfig");
        fns.MapPut("/{function}/concurrency-config", PutConcurrency).WithName("PutConcurrencyConfig");
        fns.MapGet("/{function}/concurrency-config", GetConcurrency).WithName("GetConcurrencyConfig");
        fns.MapPost("/{function}/custom-domains", MountDomain).WithName("MountDomain");
        fns.MapGet("/{function}/custom-domains", ListDomains).WithName("ListDomains");
        fns.MapDelete("/{function}/custom-domains/{domain}", UnmountDomain).WithName("UnmountDomain");
        return routes;
    }

    public static async Task<Created<ApiResponse<ServiceDto>>> CreateService(ServiceRequest request, FunctionManager svc, HttpContext http, CancellationToken ct)
    {
        var s = await svc.CreateServiceAsync(request, ct);
        return Reply.Created(http, $"/api/v1/services/{s.Name}", s);
    }

    public static async Task<Ok<ApiResponse<Page<ServiceDto>>>> ListServices(int? pageNumber, int? pageSize, FunctionManager svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListServicesAsync(PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<ServiceDto>>> GetService(string service, FunctionManager svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetServiceAsync(service, ct));

    public static async Task<NoContent> DeleteService(string service, FunctionManager svc, CancellationToken ct)
    {
        await svc.DeleteServiceAsync(service, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Created<ApiResponse<FunctionDto>>> CreateByTemplate(string service, CreateFunctionByTemplateRequest request, FunctionManager svc, HttpContext http, CancellationToken ct)
    {
        var f = await svc.CreateByTemplateAsync(service, request, ct);
        return Reply.Created(http, $"/api/v1/services/{service}/functions/{f.Name}", f);
    }

    public static async Task<Ok<ApiResponse<FunctionDto>>> UpdateByTemplate(string service, string function, UpdateFunctionByTemplateRequest request, FunctionManager svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateByTemplateAsync(service, function, request, ct));

    public static async Task<NoContent> DeleteByTemplate(string service, string function, FunctionManager svc, CancellationToken ct)
    {
        await svc.DeleteAsync(service, function, open: false, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Created<ApiResponse<FunctionDto>>> CreateOpen(string service, OpenFunctionRequest request, FunctionManager svc, HttpContext http, CancellationToken ct)
    {
        var f = await svc.CreateOpenAsync(service, request, ct);
        return Reply.Created(http, $"/api/v1/services/{service}/functions/{f.Name}", f);
    }

    public static async Task<Ok<ApiResponse<Page<FunctionDto>>>> ListFunctions(string service, int? pageNumber, int? pageSize, FunctionManager svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(service, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<FunctionDto>>> GetFunction(string service, string function, FunctionManager svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(service, function, ct));

    public static async Task<Ok<ApiResponse<FunctionDto>>> UpdateOpen(string service, string function, OpenFunctionRequest request, FunctionManager svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateOpenAsync(service, function, request, ct));

    public static async Task<NoContent> DeleteOpen(string service, string function, FunctionManager svc, CancellationToken ct)
    {
        await svc.DeleteAsync(service, function, open: true, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<ApiResponse<FunctionDto>>> Scale(string service, string function, ScaleRequest request, FunctionManager svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ScaleAsync(service, function, request, ct));

    public static async Task<Created<ApiResponse<FunctionVersionDto>>> PublishVersion(string service, string function, PublishVersionRequest request, FunctionFeatures svc, HttpContext http, CancellationToken ct)
    {
        var v = await svc.PublishVersionAsync(service, function, request, ct);
        return Reply.Created(http, $"/api/v1/services/{service}/functions/{function}/versions/{v.VersionId}", v);
    }

    public static async Task<Ok<ApiResponse<Page<FunctionVersionDto>>>> ListVersions(string service, string function, int? pageNumber, int? pageSize, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListVersionsAsync(service, function, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Created<ApiResponse<AliasDto>>> CreateAlias(string service, string function, AliasRequest request, FunctionFeatures svc, HttpContext http, CancellationToken ct)
    {
        var a = await svc.CreateAliasAsync(service, function, request, ct);
        return Reply.Created(http, $"/api/v1/services/{service}/functions/{function}/aliases/{a.Name}", a);
    }

    public static async Task<Ok<ApiResponse<IReadOnlyList<AliasDto>>>> ListAliases(string service, string function, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAliasesAsync(service, function, ct));

    public static async Task<Ok<ApiResponse<AliasDto>>> UpdateAlias(string service, string function, string alias, AliasRequest request, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateAliasAsync(service, function, alias, request, ct));

    public static async Task<NoContent> DeleteAlias(string service, string function, string alias, FunctionFeatures svc, CancellationToken ct)
    {
        await svc.DeleteAliasAsync(service, function, alias, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Created<ApiResponse<TriggerDto>>> CreateTrigger(string service, string function, TriggerRequest request, FunctionFeatures svc, HttpContext http, CancellationToken ct)
    {
        var t = await svc.CreateTriggerAsync(service, function, request, ct);
        return Reply.Created(http, $"/api/v1/services/{service}/functions/{function}/triggers/{t.Name}", t);
    }

    public static async Task<Ok<ApiResponse<IReadOnlyList<TriggerDto>>>> ListTriggers(string service, string function, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListTriggersAsync(service, function, ct));

    public static async Task<NoContent> DeleteTrigger(string service, string function, string trigger, FunctionFeatures svc, CancellationToken ct)
    {
        await svc.DeleteTriggerAsync(service, function, trigger, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<ApiResponse<AsyncInvokeConfigDto>>> PutAsyncConfig(string service, string function, AsyncInvokeConfigRequest request, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.PutAsyncConfigAsync(service, function, request, ct));

    public static async Task<Ok<ApiResponse<AsyncInvokeConfigDto>>> GetAsyncConfig(string service, string function, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsyncConfigAsync(service, function, ct));

    public static async Task<NoContent> DeleteAsyncConfig(string service, string function, FunctionFeatures svc, CancellationToken ct)
    {
        await svc.DeleteAsyncConfigAsync(service, function, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<ApiResponse<ProvisionConfigDto>>> PutProvision(string service, string function, ProvisionConfigRequest request, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.PutProvisionAsync(service, function, request, ct));

    public static async Task<Ok<ApiResponse<ProvisionConfigDto>>> GetProvision(string service, string function, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetProvisionAsync(service, function, ct));

    public static async Task<NoContent> DeleteProvision(string service, string function, FunctionFeatures svc, CancellationToken ct)
    {
        await svc.DeleteProvisionAsync(service, function, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<ApiResponse<ConcurrencyConfigDto>>> PutConcurrency(string service, string function, ConcurrencyConfigRequest request, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.PutConcurrencyAsync(service, function, request, ct));

    public static async Task<Ok<ApiResponse<ConcurrencyConfigDto>>> GetConcurrency(string service, string function, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetConcurrencyAsync(service, function, ct));

    public static async Task<Created<ApiResponse<CustomDomainDto>>> MountDomain(string service, string function, MountDomainRequest request, FunctionFeatures svc, HttpContext http, CancellationToken ct)
    {
        var d = await svc.MountDomainAsync(service, function, request, ct);
        return Reply.Created(http, $"/api/v1/services/{service}/functions/{function}/custom-domains/{d.DomainName}", d);
    }

    public static async Task<Ok<ApiResponse<IReadOnlyList<CustomDomainDto>>>> ListDomains(string service, string function, FunctionFeatures svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListDomainsAsync(service, function, ct));

    public static async Task<NoContent> UnmountDomain(string service, string function, string domain, FunctionFeatures svc, CancellationToken ct)
    {
        await svc.UnmountDomainAsync(service, function, domain, ct);
        return TypedResults.NoContent();
    }
}
