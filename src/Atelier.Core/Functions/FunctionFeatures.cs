using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Functions;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Runtime;
using Cronos;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Functions;

/// <summary>
/// What hangs off a function: versions, aliases, triggers, the async invoke config, the provision and concurrency
/// configs and custom domains. A change the backend must know is applied there first and stored only if it took.
/// </summary>
public sealed class FunctionFeatures(AtelierDb db, RequestContext ctx, TimeProvider clock, FunctionManager functions, FunctionDeployer deployer, MasterKeys keys,
    Microsoft.Extensions.Options.IOptions<Webhooks.WebhookOptions> webhooks, DomainDirectory domains, FunctionRouteCache routes, Coordination.Locks locks)
{
    /// <summary>The lock a version publish holds: version numbers come from the function's row, so one publisher at a time, on any replica.</summary>
    public static string VersionsLock(string functionId) => $"function:{functionId}:versions";

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<FunctionVersionDto> PublishVersionAsync(string service, string name, PublishVersionRequest req, CancellationToken ct)
    {
        var (_, found) = await functions.FindAsync(service, name, false, ct);
        await using var held = await locks.AcquireAsync(VersionsLock(found.Id), ct);
        // Read under the lock: the next number is the one the last publisher left.
        var (_, f) = await functions.FindAsync(service, name, true, ct);
        FunctionManager.RequireSynced(f);
        var v = new FunctionVersion { FunctionId = f.Id, Number = f.NextVersion, TenantId = TenantId, ConfigJson = f.ConfigJson, Description = Validate.Optional(req.Description, "description"), CreatedAt = Now };
        // The backend makes the version's revision now (Knative: a named revision), so an alias can point at it later.
        await deployer.ApplyAsync(f, await deployer.SpecAsync(f, extraVersion: v, ct: ct), ErrorCatalog.s_function_publishfunctionversionerror, ct);
        f.NextVersion++;
        db.FunctionVersions.Add(v);
        Audit.Record(db, ctx, clock, "function.publish", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        return ToDto(v);
    }

    /// <summary>The published versions; the backend is asked for the function too, so a version list never hides a function the backend lost.</summary>
    public async Task<Page<FunctionVersionDto>> ListVersionsAsync(string service, string name, PageRequest page, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        var seen = await RuntimeFailures.Call(ErrorCatalog.s_function_listfunctionversionserror, () => backend.ObserveAsync(region, FunctionConfigs.KeyOf(f.Id), ct));
        if (seen.Phase == FunctionPhase.Absent)
        {
            throw new AtelierException(ErrorCatalog.s_function_listfunctionversionserror, errCode: RuntimeErrors.NotDeployed, errMessage: "the backend has no such function");
        }

        return await db.FunctionVersions.AsNoTracking().Where(v => v.FunctionId == f.Id).OrderByDescending(v => v.Number).ToPageAsync(page, ToDto, ct);
    }

    public async Task<AliasDto> CreateAliasAsync(string service, string name, AliasRequest req, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        FunctionManager.RequireSynced(f);
        var alias = new FunctionAlias { FunctionId = f.Id, Name = Validate.Label(req.Name, "name", 63), TenantId = TenantId, CreatedAt = Now };
        if (alias.Name == FunctionDeployer.Latest || await db.FunctionAliases.AnyAsync(a => a.FunctionId == f.Id && a.Name == alias.Name, ct))
        {
            throw AtelierException.InvalidInput("name", $"alias {alias.Name} already exists", 409);
        }

        await ApplyAliasAsync(f, alias, req, ErrorCatalog.s_function_createaliaserror, ct);
        db.FunctionAliases.Add(alias);
        Audit.Record(db, ctx, clock, "function.alias.create", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        return ToDto(alias);
    }

    public async Task<AliasDto> UpdateAliasAsync(string service, string name, string aliasName, AliasRequest req, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        FunctionManager.RequireSynced(f);
        var alias = await db.FunctionAliases.FirstOrDefaultAsync(a => a.FunctionId == f.Id && a.Name == aliasName, ct) ?? throw AliasNotFound(aliasName);
        await ApplyAliasAsync(f, alias, req with { VersionId = req.VersionId ?? alias.Version }, ErrorCatalog.s_function_updatealiaserror, ct);
        Audit.Record(db, ctx, clock, "function.alias.update", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        return ToDto(alias);
    }

    public async Task<IReadOnlyList<AliasDto>> ListAliasesAsync(string service, string name, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        return [.. (await db.FunctionAliases.AsNoTracking().Where(a => a.FunctionId == f.Id).OrderBy(a => a.Name).ToListAsync(ct)).Select(ToDto)];
    }

    public async Task DeleteAliasAsync(string service, string name, string aliasName, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        var alias = await db.FunctionAliases.FirstOrDefaultAsync(a => a.FunctionId == f.Id && a.Name == aliasName, ct) ?? throw AliasNotFound(aliasName);
        db.FunctionAliases.Remove(alias);
        Audit.Record(db, ctx, clock, "function.alias.delete", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
    }

    private async Task ApplyAliasAsync(Function f, FunctionAlias alias, AliasRequest req, ErrorCode operation, CancellationToken ct)
    {
        var version = req.VersionId ?? throw AtelierException.InvalidInput("versionId", "is required");
        var weights = req.AdditionalVersionWeight ?? new Dictionary<string, double>();
        if (weights.Count > 1)
        {
            throw AtelierException.InvalidInput("additionalVersionWeight", "names at most one additional version");
        }

        int? extra = null;
        double weight = 0;
        foreach (var (key, w) in weights)
        {
            extra = int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw AtelierException.InvalidInput("additionalVersionWeight", $"'{key}' is not a version number");
            weight = w is >= 0 and <= 1 && double.IsFinite(w) ? w : throw AtelierException.InvalidInput("additionalVersionWeight", $"weight {w} must be between 0 and 1");
        }

        foreach (var v in extra is { } e ? new[] { version, e } : [version])
        {
            if (!await db.FunctionVersions.AnyAsync(x => x.FunctionId == f.Id && x.Number == v, ct))
            {
                throw AtelierException.InvalidInput("versionId", $"version {v} of the function does not exist");
            }
        }

        if (extra == version)
        {
            throw AtelierException.InvalidInput("additionalVersionWeight", "the additional version must differ from versionId");
        }

        alias.Version = version;
        alias.AdditionalVersion = extra;
        alias.AdditionalWeight = extra is null ? 0 : weight;
        alias.Description = Validate.Optional(req.Description, "description") ?? alias.Description;
        alias.UpdatedAt = Now;
        var others = await db.FunctionAliases.AsNoTracking().Where(a => a.FunctionId == f.Id && a.Name != alias.Name).ToListAsync(ct);
        await deployer.ApplyAsync(f, await deployer.SpecAsync(f, [.. others, alias], ct: ct), operation, ct);
    }

    public async Task<TriggerDto> CreateTriggerAsync(string service, string name, TriggerRequest req, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        // At most 30: a timer becomes a backend object named after the function and the trigger (a DNS label of 63).
        var t = new FunctionTrigger { FunctionId = f.Id, Name = Validate.Label(req.Name, "name", 30), TenantId = TenantId, Kind = req.Type ?? "", CreatedAt = Now };
        t.Qualifier = req.Qualifier is null ? null : Validate.Name(req.Qualifier, "qualifier");
        t.Enabled = req.Enabled ?? true;
        switch (req.Type)
        {
            case "http":
                t.Anonymous = req.Anonymous ?? false;
                var methods = (req.Methods ?? ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]).Select(m => m.ToUpperInvariant()).Distinct(StringComparer.Ordinal).ToList();
                if (methods.Count == 0 || methods.Any(m => m is not ("GET" or "POST" or "PUT" or "DELETE" or "PATCH" or "HEAD" or "OPTIONS")))
                {
                    throw AtelierException.InvalidInput("methods", "must be HTTP methods among GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS");
                }

                t.MethodsJson = FunctionDeployer.Serialize(methods);
                break;
            case "timer":
                var cron = ParseCron(req.Cron);
                t.Cron = req.Cron!.Trim();
                t.Payload = Validate.Optional(req.Payload, "payload", 65536) ?? "";
                t.NextRunAt = cron.GetNextOccurrence(Now, TimeZoneInfo.Utc);
                break;
            default:
                throw AtelierException.InvalidInput("type", "must be http or timer");
        }

        if (await db.FunctionTriggers.AnyAsync(x => x.FunctionId == f.Id && x.Name == t.Name, ct))
        {
            throw AtelierException.InvalidInput("name", $"trigger {t.Name} already exists", 409);
        }

        // The trigger's target must be servable: the function is asked for at the backend before the trigger is kept.
        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        var seen = await RuntimeFailures.Call(ErrorCatalog.s_function_createtriggererror, () => backend.ObserveAsync(region, FunctionConfigs.KeyOf(f.Id), ct));
        if (seen.Phase is FunctionPhase.Absent or FunctionPhase.Failed)
        {
            throw new AtelierException(ErrorCatalog.s_function_createtriggererror, errCode: RuntimeErrors.NotDeployed, errMessage: seen.Reason ?? "the backend has no such function");
        }

        if (t.Kind == "timer" && backend.SchedulesTimers)
        {
            // The backend fires it (kubernetes: a PingSource), so it is made there before the trigger is kept.
            var timers = await db.FunctionTriggers.AsNoTracking().Where(x => x.FunctionId == f.Id && x.Kind == "timer" && x.Enabled).ToListAsync(ct);
            await deployer.ApplyAsync(f, await deployer.SpecAsync(f, ct: ct, timers: [.. timers, t]), ErrorCatalog.s_function_createtriggererror, ct);
        }

        db.FunctionTriggers.Add(t);
        Audit.Record(db, ctx, clock, "function.trigger.create", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        return ToDto(t);
    }

    public async Task<IReadOnlyList<TriggerDto>> ListTriggersAsync(string service, string name, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        return [.. (await db.FunctionTriggers.AsNoTracking().Where(t => t.FunctionId == f.Id).OrderBy(t => t.Name).ToListAsync(ct)).Select(ToDto)];
    }

    public async Task DeleteTriggerAsync(string service, string name, string trigger, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        var t = await db.FunctionTriggers.FirstOrDefaultAsync(x => x.FunctionId == f.Id && x.Name == trigger, ct)
                ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"trigger: {trigger} does not exist" }, status: 404);
        db.FunctionTriggers.Remove(t);
        Audit.Record(db, ctx, clock, "function.trigger.delete", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        if (t.Kind == "timer" && backend.SchedulesTimers)
        {
            try
            {
                await backend.ApplyAsync(region, await deployer.SpecAsync(f, ct: ct), ct);
            }
            catch (RuntimeException)
            {
                // The trigger is gone here; the backend's copy goes when the reconciler applies this generation.
                await db.Functions.Where(x => x.Id == f.Id).ExecuteUpdateAsync(u => u.SetProperty(x => x.Generation, x => x.Generation + 1), ct);
            }
        }
        routes.Clear();
    }

    public static CronExpression ParseCron(string? cron)
    {
        var text = cron?.Trim() ?? throw AtelierException.InvalidInput("cron", "is required for a timer trigger");
        try
        {
            return CronExpression.Parse(text, text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        }
        catch (CronFormatException e)
        {
            throw AtelierException.InvalidInput("cron", $"'{text}' does not parse: {e.Message}");
        }
    }

    public async Task<AsyncInvokeConfigDto> PutAsyncConfigAsync(string service, string name, AsyncInvokeConfigRequest req, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, true, ct);
        var config = new AsyncInvokeConfigDto(
            Validate.Range(req.MaxAsyncRetryAttempts, "maxAsyncRetryAttempts", 0, 8, 3),
            Validate.Range(req.MaxAsyncEventAgeInSeconds, "maxAsyncEventAgeInSeconds", 1, 604800, 86400),
            new AsyncDestinationConfig(await DestinationAsync(req.DestinationConfig?.OnSuccess, "onSuccess", ct), await DestinationAsync(req.DestinationConfig?.OnFailure, "onFailure", ct)));
        f.AsyncConfigJson = FunctionDeployer.Serialize(config);
        f.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "function.async_config.put", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        return config;
    }

    public async Task<AsyncInvokeConfigDto> GetAsyncConfigAsync(string service, string name, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        return AsyncConfigOf(f);
    }

    public async Task DeleteAsyncConfigAsync(string service, string name, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, true, ct);
        f.AsyncConfigJson = null;
        Audit.Record(db, ctx, clock, "function.async_config.delete", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
    }

    public static AsyncInvokeConfigDto AsyncConfigOf(Function f) =>
        f.AsyncConfigJson is null ? new AsyncInvokeConfigDto(3, 86400, new AsyncDestinationConfig(null, null))
            : JsonSerializer.Deserialize<AsyncInvokeConfigDto>(f.AsyncConfigJson, AtelierJson.Options)!;

    /// <summary>
    /// A destination is a webhook URL, checked by the address guard (never a private or loopback address), or a
    /// function of the tenant that its backend has deployed: one that is not is <c>s_function_putasyncinvokeconfigerror</c>.
    /// </summary>
    private async Task<AsyncDestination?> DestinationAsync(AsyncDestination? d, string field, CancellationToken ct)
    {
        if (d?.Destination is not { } text)
        {
            return null;
        }

        if (text.StartsWith("function:", StringComparison.Ordinal))
        {
            var parts = text["function:".Length..].Split('/');
            if (parts.Length != 2)
            {
                throw AtelierException.InvalidInput($"destinationConfig.{field}", "a function destination is function:{service}/{function}");
            }

            var (_, target) = await functions.FindAsync(parts[0], parts[1], false, ct);
            var (region, backend) = await deployer.BackendOfAsync(target, ct);
            var seen = await RuntimeFailures.Call(ErrorCatalog.s_function_putasyncinvokeconfigerror, () => backend.ObserveAsync(region, FunctionConfigs.KeyOf(target.Id), ct));
            if (seen.Phase is FunctionPhase.Absent or FunctionPhase.Failed)
            {
                throw new AtelierException(ErrorCatalog.s_function_putasyncinvokeconfigerror, errCode: RuntimeErrors.NotDeployed, errMessage: $"destination {text}: {seen.Reason ?? "not deployed"}");
            }

            return d;
        }

        // A webhook destination is sent like the apps' webhooks: the same address guard, at save and at send.
        return new AsyncDestination(AddressGuard.CheckUrlInput(text, $"destinationConfig.{field}", webhooks.Value.AllowPrivateNetworks));
    }

    public async Task<ProvisionConfigDto> PutProvisionAsync(string service, string name, ProvisionConfigRequest req, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, true, ct);
        var target = Validate.Range(req.Target, "target", 0, 64, -1);
        if (target < 0)
        {
            throw AtelierException.InvalidInput("target", "is required");
        }

        var creating = f.ProvisionedInstances is null;
        var before = f.ProvisionedInstances;
        f.ProvisionedInstances = target;
        try
        {
            await deployer.ApplyAsync(f, await deployer.SpecAsync(f, ct: ct), creating ? ErrorCatalog.s_function_createprovisionconfigerror : ErrorCatalog.s_function_putprovisionconfigerror, ct);
        }
        catch
        {
            f.ProvisionedInstances = before;
            throw;
        }

        f.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "function.provision.put", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        return await ProvisionOfAsync(f, ErrorCatalog.s_function_putprovisionconfigerror, ct);
    }

    public async Task<ProvisionConfigDto> GetProvisionAsync(string service, string name, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        return await ProvisionOfAsync(f, ErrorCatalog.s_function_getprovisionconfigerror, ct);
    }

    public async Task DeleteProvisionAsync(string service, string name, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, true, ct);
        var before = f.ProvisionedInstances;
        f.ProvisionedInstances = null;
        try
        {
            await deployer.ApplyAsync(f, await deployer.SpecAsync(f, ct: ct), ErrorCatalog.s_function_deleteprovisionconfigerror, ct);
        }
        catch
        {
            f.ProvisionedInstances = before;
            throw;
        }

        Audit.Record(db, ctx, clock, "function.provision.delete", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
    }

    private async Task<ProvisionConfigDto> ProvisionOfAsync(Function f, ErrorCode operation, CancellationToken ct)
    {
        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        var seen = await RuntimeFailures.Call(operation, () => backend.ObserveAsync(region, FunctionConfigs.KeyOf(f.Id), ct));
        return new ProvisionConfigDto(f.ProvisionedInstances ?? 0, seen.ReadyInstances, seen.Phase == FunctionPhase.Failed ? seen.Reason : null);
    }

    public async Task<ConcurrencyConfigDto> PutConcurrencyAsync(string service, string name, ConcurrencyConfigRequest req, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, true, ct);
        var reserved = Validate.Range(req.ReservedConcurrency, "reservedConcurrency", 1, 64, -1);
        if (reserved < 0)
        {
            throw AtelierException.InvalidInput("reservedConcurrency", "is required");
        }

        var before = f.ReservedConcurrency;
        f.ReservedConcurrency = reserved;
        try
        {
            await deployer.ApplyAsync(f, await deployer.SpecAsync(f, ct: ct), ErrorCatalog.s_function_putconcurrencyconfigerror, ct);
        }
        catch
        {
            f.ReservedConcurrency = before;
            throw;
        }

        Audit.Record(db, ctx, clock, "function.concurrency.put", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        return new ConcurrencyConfigDto(reserved);
    }

    public async Task<ConcurrencyConfigDto> GetConcurrencyAsync(string service, string name, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        return new ConcurrencyConfigDto(f.ReservedConcurrency ?? 0);
    }

    /// <summary>Mounts a host on the function: certificate and key are required, must parse and must be a pair; a host another function holds is refused.</summary>
    public async Task<CustomDomainDto> MountDomainAsync(string service, string name, MountDomainRequest req, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        var host = Validate.HostName(req.DomainName, "domainName");
        if (string.IsNullOrWhiteSpace(req.Certificate))
        {
            throw new AtelierException(ErrorCatalog.b_fc_functionpublickeynotfound, errCode: ErrCodes.CertificateInvalid, errMessage: "certificate is required");
        }

        if (string.IsNullOrWhiteSpace(req.PrivateKey))
        {
            throw new AtelierException(ErrorCatalog.b_fc_functionprivatekeynotfound, errCode: ErrCodes.CertificateInvalid, errMessage: "privateKey is required");
        }

        DateTime notAfter;
        try
        {
            using var cert = X509Certificate2.CreateFromPem(req.Certificate, req.PrivateKey);
            notAfter = cert.NotAfter.ToUniversalTime();
            if (!cert.MatchesHostname(host, allowWildcards: true, allowCommonName: true))
            {
                throw AtelierException.InvalidInput("certificate", $"the certificate is not valid for {host}");
            }
        }
        catch (CryptographicException e)
        {
            throw AtelierException.InvalidInput("certificate", $"certificate and privateKey must be a PEM certificate and its private key ({e.Message})");
        }
        catch (ArgumentException e)
        {
            throw AtelierException.InvalidInput("certificate", $"certificate and privateKey must be PEM ({e.Message})");
        }

        if (await db.CustomDomains.IgnoreQueryFilters().AnyAsync(d => d.Host == host, ct))
        {
            throw AtelierException.InvalidInput("domainName", $"{host} is already mounted", 409);
        }

        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        await RuntimeFailures.Call(ErrorCatalog.s_function_mountdomainerror,
            () => backend.MountDomainAsync(region, FunctionConfigs.KeyOf(f.Id), new DomainSpec(host, req.Certificate, req.PrivateKey), ct));
        var d = new CustomDomain
        {
            Host = host, TenantId = TenantId, FunctionId = f.Id, Qualifier = req.Qualifier, CertificatePem = req.Certificate,
            PrivateKeyCipher = SecretSeal.Seal(keys, KeyPurpose.RuntimeSecrets, req.PrivateKey), CertificateNotAfter = notAfter, CreatedAt = Now,
        };
        db.CustomDomains.Add(d);
        Audit.Record(db, ctx, clock, "function.domain.mount", "function", f.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("domainName", $"{host} is already mounted", 409), ct);
        routes.Clear();
        domains.Evict(host);
        return new CustomDomainDto(host, f.Name, d.Qualifier, notAfter, d.CreatedAt);
    }

    public async Task UnmountDomainAsync(string service, string name, string host, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        var d = await db.CustomDomains.FirstOrDefaultAsync(x => x.Host == host && x.FunctionId == f.Id, ct)
                ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"domainName: {host} is not mounted on {name}" }, status: 404);
        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        await RuntimeFailures.Call(ErrorCatalog.s_function_unmountdomainerror, () => backend.UnmountDomainAsync(region, FunctionConfigs.KeyOf(f.Id), host, ct));
        db.CustomDomains.Remove(d);
        Audit.Record(db, ctx, clock, "function.domain.unmount", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        domains.Evict(host);
    }

    public async Task<IReadOnlyList<CustomDomainDto>> ListDomainsAsync(string service, string name, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, name, false, ct);
        return [.. (await db.CustomDomains.AsNoTracking().Where(d => d.FunctionId == f.Id).OrderBy(d => d.Host).ToListAsync(ct))
            .Select(d => new CustomDomainDto(d.Host, f.Name, d.Qualifier, d.CertificateNotAfter, d.CreatedAt))];
    }

    private static AtelierException AliasNotFound(string name) =>
        new(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"alias: {name} does not exist" }, status: 404);

    private static FunctionVersionDto ToDto(FunctionVersion v) => new(v.Number, v.Description, FunctionConfigs.Read(v.ConfigJson), v.CreatedAt);

    private static AliasDto ToDto(FunctionAlias a) =>
        new(a.Name, a.Version, a.AdditionalVersion is { } e ? new Dictionary<string, double> { [e.ToString(CultureInfo.InvariantCulture)] = a.AdditionalWeight } : new Dictionary<string, double>(),
            a.Description, a.CreatedAt, a.UpdatedAt);

    private static TriggerDto ToDto(FunctionTrigger t) =>
        new(t.Name, t.Kind, t.Qualifier, t.Anonymous, JsonSerializer.Deserialize<List<string>>(t.MethodsJson, AtelierJson.Options) ?? [], t.Cron, t.Payload,
            t.Enabled, t.NextRunAt, t.LastRunAt, t.CreatedAt);
}
