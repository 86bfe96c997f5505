using System.Globalization;
using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Runtime;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Functions;

/// <summary>Where one routed request goes: the function's backend name, its region and backend, the revision picked, and how long it may take.</summary>
public sealed record RouteTarget(FunctionKey Key, RuntimeRegion Region, IRuntimeBackend Backend, string Revision, TimeSpan Timeout);

/// <summary>A function the router found (for the host, which never sees the database's types).</summary>
public sealed class RoutedFunction
{
    internal RoutedFunction(Function entity, string serviceName)
    {
        Entity = entity;
        ServiceName = serviceName;
        Key = FunctionConfigs.KeyOf(entity.Id);
        Timeout = TimeSpan.FromSeconds(FunctionConfigs.Read(entity.ConfigJson).TimeoutSeconds);
    }

    internal FunctionKey Key { get; }

    /// <summary>The longest a request to it may take, a cold start included.</summary>
    public TimeSpan Timeout { get; }

    internal Function Entity { get; }

    public string Id => Entity.Id;

    public string Name => Entity.Name;

    public string ServiceName { get; }
}

/// <summary>
/// Resolves <c>/fn/{service}/{function}[.{qualifier}]</c> (or a custom domain) to a revision: <c>LATEST</c> or none is
/// the draft, a number is that published version, a name is an alias (its second version by its weight). A service
/// is named by id by anyone, by name within the caller's tenant.
/// </summary>
public sealed class FunctionRouting(AtelierDb db, RequestContext ctx, FunctionDeployer deployer, Authenticator auth, FunctionRouteCache cache)
{
    /// <summary>The function a mounted domain serves; an anonymous request needs an anonymous HTTP trigger for its method (its tenant is then entered).</summary>
    public async Task<RoutedFunction?> FindByDomainAsync(DomainRoute route, bool anonymous, string method, CancellationToken ct)
    {
        var f = await db.Functions.IgnoreQueryFilters().AsNoTracking().FirstOrDefaultAsync(x => x.Id == route.FunctionId, ct);
        if (f is null)
        {
            return null;
        }

        if (anonymous)
        {
            if (!await AnonymousAsync(f.Id, method, ct))
            {
                return null;
            }

            await auth.EnterTenantAnonymouslyAsync(ctx, f.TenantId, ct);
        }
        else if (ctx.TenantId != f.TenantId)
        {
            return null;
        }

        var service = await db.FunctionServices.IgnoreQueryFilters().AsNoTracking().Where(s => s.Id == f.ServiceId).Select(s => s.Name).FirstAsync(ct);
        return new RoutedFunction(f, service);
    }

    /// <summary>The function a public (unauthenticated) request names, when one of its HTTP triggers is anonymous for the method; its tenant is entered.</summary>
    public async Task<RoutedFunction?> FindAnonymousAsync(string service, string function, string method, CancellationToken ct)
    {
        var name = Split(function).Name;
        var routed = await cache.Functions.GetOrAddAsync($"anon|{service}|{name}|{method.ToUpperInvariant()}", async () =>
        {
            var f = await db.Functions.IgnoreQueryFilters().AsNoTracking()
                .Where(x => x.Name == name && db.FunctionServices.IgnoreQueryFilters().Any(s => s.Id == x.ServiceId && s.Id == service))
                .FirstOrDefaultAsync(ct);
            if (f is null || !await AnonymousAsync(f.Id, method, ct))
            {
                return null;
            }

            var serviceName = await db.FunctionServices.IgnoreQueryFilters().AsNoTracking().Where(s => s.Id == f.ServiceId).Select(s => s.Name).FirstAsync(ct);
            return serviceName == FunctionManager.StudioService ? null : new RoutedFunction(f, serviceName);
        });
        if (routed is not null)
        {
            await auth.EnterTenantAnonymouslyAsync(ctx, routed.Entity.TenantId, ct);
        }

        return routed;
    }

    private async Task<bool> AnonymousAsync(string functionId, string method, CancellationToken ct)
    {
        var triggers = await db.FunctionTriggers.IgnoreQueryFilters().AsNoTracking().Where(t => t.FunctionId == functionId && t.Kind == "http" && t.Enabled && t.Anonymous).ToListAsync(ct);
        return triggers.Any(t => (JsonSerializer.Deserialize<List<string>>(t.MethodsJson, AtelierJson.Options) ?? []).Contains(method, StringComparer.OrdinalIgnoreCase));
    }

    /// <summary>
    /// The function named in the caller's tenant (service by id or name). A session's studio instance
    /// (<see cref="FunctionManager.StudioService"/>) is never routed to here: only its own session reaches it, through the studio.
    /// </summary>
    public async Task<RoutedFunction> FindAsync(string service, string function, CancellationToken ct)
    {
        var found = await FindAnyAsync(service, function, ct);
        return found.ServiceName == FunctionManager.StudioService ? throw NotFound($"{service}/{Split(function).Name}") : found;
    }

    /// <summary>A function of the caller's tenant, the studio service's included (the studio's own route).</summary>
    public async Task<RoutedFunction> FindAnyAsync(string service, string function, CancellationToken ct)
    {
        var name = Split(function).Name;
        var routed = await cache.Functions.GetOrAddAsync($"{ctx.TenantId}|{service}|{name}", async () =>
        {
            var s = await db.FunctionServices.AsNoTracking().FirstOrDefaultAsync(x => x.Name == service || x.Id == service, ct);
            var f = s is null ? null : await db.Functions.AsNoTracking().FirstOrDefaultAsync(x => x.ServiceId == s.Id && x.Name == name, ct);
            return f is null ? null : new RoutedFunction(f, s!.Name);
        });
        return routed ?? throw NotFound($"{service}/{name}");
    }

    /// <summary>The revision and backend for one request to <paramref name="f"/>; <c>s_fc_stateinvalid</c> unless it is synchronised.</summary>
    public async Task<RouteTarget> TargetAsync(RoutedFunction routed, string functionSegment, CancellationToken ct)
    {
        var f = routed.Entity;
        FunctionManager.RequireSynced(f);
        var revision = await RevisionAsync(f, Split(functionSegment).Qualifier, ct);
        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        return new RouteTarget(routed.Key, region, backend, revision, routed.Timeout);
    }

    public async Task<string> RevisionAsync(Function f, string? qualifier, CancellationToken ct)
    {
        if (qualifier is null || string.Equals(qualifier, "LATEST", StringComparison.OrdinalIgnoreCase))
        {
            return FunctionDeployer.Latest;
        }

        if (int.TryParse(qualifier, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return await db.FunctionVersions.AnyAsync(v => v.FunctionId == f.Id && v.Number == number, ct)
                ? FunctionConfigs.RevisionOf(number) : throw NotFound($"{f.Name}.{qualifier}");
        }

        var alias = await db.FunctionAliases.AsNoTracking().FirstOrDefaultAsync(a => a.FunctionId == f.Id && a.Name == qualifier, ct) ?? throw NotFound($"{f.Name}.{qualifier}");
        var second = alias.AdditionalVersion is { } extra && Random.Shared.NextDouble() < alias.AdditionalWeight;
        return FunctionConfigs.RevisionOf(second ? alias.AdditionalVersion!.Value : alias.Version);
    }

    /// <summary><c>s_fc_stateinvalid</c> unless the function is synchronised.</summary>
    public static void RequireSynced(RoutedFunction f) => FunctionManager.RequireSynced(f.Entity);

    /// <summary><c>name.qualifier</c> → (name, qualifier); function names are labels, so the first dot separates.</summary>
    public static (string Name, string? Qualifier) Split(string segment)
    {
        var dot = segment.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? (segment, null) : (segment[..dot], segment[(dot + 1)..]);
    }

    private static AtelierException NotFound(string what) =>
        new(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"function: {what} does not exist" }, status: 404, errCode: ErrCodes.FunctionNotFound, errMessage: what);
}
