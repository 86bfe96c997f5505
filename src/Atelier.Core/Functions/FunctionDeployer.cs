using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Functions;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Runtime;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Functions;

/// <summary>
/// Builds a function's desired spec from its rows (the draft as <c>latest</c>, every version an alias names as
/// <c>v{n}</c>, the scale configs, the tenant's maximum) and hands it to the region's backend.
/// </summary>
public sealed class FunctionDeployer(AtelierDb db, RuntimeRegions regions)
{
    public const string Latest = "latest";

    /// <summary>How many of the newest published versions stay invocable by number without an alias.</summary>
    public const int NewestVersions = 10;

    /// <summary>The spec of <paramref name="f"/>, with <paramref name="aliases"/> replacing the stored ones when given and <paramref name="extraVersion"/> included (a version being published).</summary>
    public async Task<FunctionSpec> SpecAsync(Function f, IReadOnlyList<FunctionAlias>? aliases = null, FunctionVersion? extraVersion = null,
        IReadOnlyList<FunctionTrigger>? timers = null, CancellationToken ct = default)
    {
        timers ??= await db.FunctionTriggers.AsNoTracking().Where(t => t.FunctionId == f.Id && t.Kind == "timer" && t.Enabled).OrderBy(t => t.Name).ToListAsync(ct);
        aliases ??= await db.FunctionAliases.AsNoTracking().Where(a => a.FunctionId == f.Id).ToListAsync(ct);
        // Versions an alias names take traffic (tagged); the newest others are there to be invoked by number (started on demand).
        var wanted = aliases.SelectMany(a => a.AdditionalVersion is { } v ? new[] { a.Version, v } : [a.Version]).ToHashSet();
        var newest = await db.FunctionVersions.AsNoTracking().Where(v => v.FunctionId == f.Id).OrderByDescending(v => v.Number).Select(v => v.Number).Take(NewestVersions).ToListAsync(ct);
        var all = wanted.Concat(newest).ToHashSet();
        var versions = await db.FunctionVersions.AsNoTracking().Where(v => v.FunctionId == f.Id && all.Contains(v.Number)).ToListAsync(ct);
        if (extraVersion is not null)
        {
            versions.Add(extraVersion);
        }

        var latest = FunctionConfigs.Read(f.ConfigJson);
        var revisions = new List<RevisionSpec> { FunctionConfigs.ToRevision(Latest, latest) };
        var traffic = new List<TrafficTarget> { new(Latest, 100, Latest) };
        foreach (var v in versions.DistinctBy(v => v.Number).OrderBy(v => v.Number))
        {
            var name = FunctionConfigs.RevisionOf(v.Number);
            revisions.Add(FunctionConfigs.ToRevision(name, FunctionConfigs.Read(v.ConfigJson)));
            if (wanted.Contains(v.Number) || v.Number == extraVersion?.Number)
            {
                traffic.Add(new TrafficTarget(name, 0, name));
            }
        }

        var settings = await SettingsAsync(f.TenantId, ct);
        return new FunctionSpec
        {
            Key = FunctionConfigs.KeyOf(f.Id), Revisions = revisions, Traffic = traffic,
            MinInstances = Math.Max(f.ManualInstances, f.ProvisionedInstances ?? 0),
            MaxInstances = f.ReservedConcurrency ?? settings.MaxInstances ?? 0,
            IdleWindow = TimeSpan.FromSeconds(latest.IdleSeconds),
            Timers = [.. timers.Select(t => new TimerSpec(t.Name, t.Cron!, t.Payload ?? ""))],
            Labels = new Dictionary<string, string> { ["atelier.dev/tenant"] = f.TenantId.Replace('_', '-'), ["atelier.dev/function"] = f.Id.Replace('_', '-') },
        };
    }

    public async Task<TenantFunctionSettings> SettingsAsync(string tenantId, CancellationToken ct)
    {
        var json = await db.TenantConfigs.IgnoreQueryFilters().Where(c => c.TenantId == tenantId).Select(c => c.FunctionSettingsJson).FirstOrDefaultAsync(ct);
        return TenantFunctionSettings.Parse(json);
    }

    /// <summary>Applies <paramref name="spec"/> in the function's region; a backend failure becomes <paramref name="operation"/>.</summary>
    public async Task ApplyAsync(Function f, FunctionSpec spec, ErrorCode operation, CancellationToken ct)
    {
        var (region, backend) = await regions.ResolveAsync(f.Region, ct);
        await RuntimeFailures.Call(operation, () => backend.ApplyAsync(region, spec, ct));
    }

    public async Task<(RuntimeRegion Region, IRuntimeBackend Backend)> BackendOfAsync(Function f, CancellationToken ct) => await regions.ResolveAsync(f.Region, ct);

    public static JsonElement? Parameters(Function f) =>
        f.InstanceParametersJson is null ? null : JsonDocument.Parse(f.InstanceParametersJson).RootElement.Clone();

    public static FunctionDto ToDto(Function f, string serviceName, FunctionRuntimeDto? runtime = null) =>
        new(f.Id, serviceName, f.Name, f.Description, f.Region, f.TemplateId, Parameters(f), FunctionConfigs.Read(f.ConfigJson), f.State, f.StateReason,
            f.ManualInstances, f.ProvisionedInstances, f.ReservedConcurrency, $"/fn/{serviceName}/{f.Name}/", f.CreatedAt, f.UpdatedAt, runtime);

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, AtelierJson.Options);
}
