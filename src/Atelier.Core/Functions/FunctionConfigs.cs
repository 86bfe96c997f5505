using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Functions;
using Atelier.Core.Common;
using Atelier.Data.Entities;
using Atelier.Runtime;

namespace Atelier.Core.Functions;

/// <summary>
/// How a function's runnable configuration is made: from a template and instance parameters (checked against the
/// template's schema, then filled into <c>{{name}}</c> placeholders), or from an open-function request; the tenant's
/// function settings fill what neither says. And how a configuration becomes a backend revision.
/// </summary>
public static partial class FunctionConfigs
{
    public const int ArgsMax = 64;
    public const int EnvironmentMax = 64;
    public const int DefaultIdleSeconds = 300;

    public static IReadOnlyList<string> CheckArgs(IReadOnlyList<string>? args)
    {
        if (args is null)
        {
            return [];
        }

        if (args.Count > ArgsMax || args.Any(a => a is null || a.Length > 4096 || a.Contains('\0', StringComparison.Ordinal)))
        {
            throw AtelierException.InvalidInput("args", $"at most {ArgsMax} arguments of at most 4096 characters, without NUL");
        }

        return args;
    }

    public static IReadOnlyDictionary<string, string> CheckEnvironment(IReadOnlyDictionary<string, string>? env)
    {
        if (env is null)
        {
            return new Dictionary<string, string>();
        }

        if (env.Count > EnvironmentMax || env.Any(kv => !EnvName().IsMatch(kv.Key) || kv.Value is null || kv.Value.Length > 4096))
        {
            throw AtelierException.InvalidInput("environment", $"at most {EnvironmentMax} variables named [A-Za-z_][A-Za-z0-9_]*, values of at most 4096 characters");
        }

        return env;
    }

    public static string CheckHealthPath(string? path)
    {
        var p = path ?? "/";
        return p.StartsWith('/') && p.Length <= 256 && !p.Any(char.IsControl) && !p.Contains("//", StringComparison.Ordinal)
            ? p : throw AtelierException.InvalidInput("healthPath", "must be a path starting with /");
    }

    public static IReadOnlyList<string> Args(string json) => JsonSerializer.Deserialize<List<string>>(json, AtelierJson.Options) ?? [];

    public static IReadOnlyDictionary<string, string> Environment(string json) =>
        JsonSerializer.Deserialize<Dictionary<string, string>>(json, AtelierJson.Options) ?? new Dictionary<string, string>();

    public static FunctionConfig Read(string json) => JsonSerializer.Deserialize<FunctionConfig>(json, AtelierJson.Options)!;

    public static string Write(FunctionConfig config) => JsonSerializer.Serialize(config, AtelierJson.Options);

    /// <summary>
    /// Checks the instance parameters against the template's schema (with its top-level defaults applied first) and
    /// answers the filled configuration; every violation is listed in one <c>p_common_inputinvalid</c>.
    /// </summary>
    public static (FunctionConfig Config, JsonElement Parameters) FromTemplate(FunctionTemplate t, JsonElement parameters, TenantFunctionSettings settings)
    {
        if (parameters.ValueKind != JsonValueKind.Object)
        {
            throw AtelierException.InvalidInput("instanceParameters", "must be a JSON object");
        }

        var schema = JsonSchema.Load(t.ParametersSchemaJson);
        var filled = WithDefaults(schema.Document, parameters);
        var violations = schema.Validate(filled);
        if (violations.Count > 0)
        {
            throw AtelierException.InvalidInput("instanceParameters", string.Join("; ", violations.Take(10)));
        }

        var values = filled.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText(), StringComparer.Ordinal);
        string Fill(string s) => Placeholder().Replace(s, m => values.TryGetValue(m.Groups[1].Value, out var v) ? v : "");
        var env = new Dictionary<string, string>(settings.Environment, StringComparer.Ordinal);
        foreach (var (k, v) in Environment(t.EnvironmentJson))
        {
            env[k] = Fill(v);
        }

        var config = new FunctionConfig(t.Engine, t.Image is null ? null : Fill(t.Image), t.Command is null ? null : Fill(t.Command), [.. Args(t.ArgsJson).Select(Fill)], env, t.Port, t.HealthPath,
            t.Cpu, t.MemoryMb, t.Gpu, t.InstanceConcurrency, t.TimeoutSeconds, DefaultIdleSeconds, settings.OutputFormat);
        return (config, filled);
    }

    /// <summary>An open function's configuration: the request, then the tenant's settings, then the platform's defaults.</summary>
    public static FunctionConfig FromOpenRequest(OpenFunctionRequest req, TenantFunctionSettings settings)
    {
        var image = Validate.Optional(req.Image, "image", 1024);
        var command = Validate.Optional(req.Command, "command", 1024);
        if (image is null && command is null)
        {
            throw AtelierException.InvalidInput("command", "a function needs a command (local) or an image (kubernetes)");
        }

        var engine = req.Engine ?? settings.Engine ?? "custom";
        if (!RuntimeCatalogService.Engines.Contains(engine))
        {
            throw AtelierException.InvalidInput("engine", "must be one of " + string.Join(", ", RuntimeCatalogService.Engines));
        }

        var env = new Dictionary<string, string>(settings.Environment, StringComparer.Ordinal);
        foreach (var (k, v) in CheckEnvironment(req.Environment))
        {
            env[k] = v;
        }

        return new FunctionConfig(engine, image, command, CheckArgs(req.Args), env,
            Validate.Range(req.Port, "port", 0, 65535, 0), CheckHealthPath(req.HealthPath),
            req.Cpu is { } cpu && (cpu < 0 || cpu > 256) ? throw AtelierException.InvalidInput("cpu", "must be between 0 and 256") : req.Cpu ?? 0,
            Validate.Range(req.MemoryMb, "memoryMb", 0, 1048576, settings.MemoryMb ?? 0), Validate.Range(req.Gpu, "gpu", 0, 16, 0),
            Validate.Range(req.InstanceConcurrency, "instanceConcurrency", 1, 1000, settings.InstanceConcurrency ?? 1),
            Validate.Range(req.TimeoutSeconds, "timeoutSeconds", 1, 86400, settings.TimeoutSeconds ?? 300),
            Validate.Range(req.IdleSeconds, "idleSeconds", 1, 86400, DefaultIdleSeconds), settings.OutputFormat);
    }

    /// <summary>A configuration as a backend revision named <paramref name="name"/>.</summary>
    public static RevisionSpec ToRevision(string name, FunctionConfig c) => new()
    {
        Name = name, Image = c.Image, Command = c.Command, Args = c.Args, Environment = c.Environment, Port = c.Port, HealthPath = c.HealthPath,
        InstanceConcurrency = c.InstanceConcurrency, TimeoutSeconds = c.TimeoutSeconds, Cpu = c.Cpu, MemoryMb = c.MemoryMb, Gpu = c.Gpu,
    };

    /// <summary>The backend name of a function: a DNS-1035 label from its id.</summary>
    public static FunctionKey KeyOf(string functionId) => new("fn-" + functionId[(functionId.IndexOf('_', StringComparison.Ordinal) + 1)..]);

    /// <summary>The backend name of a version's revision.</summary>
    public static string RevisionOf(int version) => "v" + version.ToString(CultureInfo.InvariantCulture);

    private static JsonElement WithDefaults(JsonElement schema, JsonElement parameters)
    {
        var merged = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        if (schema.TryGetProperty("properties", out var props) && props.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in props.EnumerateObject())
            {
                if (p.Value.ValueKind == JsonValueKind.Object && p.Value.TryGetProperty("default", out var d))
                {
                    merged[p.Name] = d;
                }
            }
        }

        foreach (var p in parameters.EnumerateObject())
        {
            merged[p.Name] = p.Value;
        }

        return JsonSerializer.SerializeToElement(merged, AtelierJson.Options);
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    private static partial Regex EnvName();

    [GeneratedRegex(@"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")]
    private static partial Regex Placeholder();
}

/// <summary>The tenant's global function settings as defaults for its functions (<c>/api/v1/tenant/function-settings</c>).</summary>
public sealed record TenantFunctionSettings(string? Engine, int? TimeoutSeconds, int? MemoryMb, int? InstanceConcurrency, int? MaxInstances,
    IReadOnlyDictionary<string, string> Environment, string? OutputFormat)
{
    public static readonly TenantFunctionSettings None = new(null, null, null, null, null, new Dictionary<string, string>(), null);

    public static TenantFunctionSettings Parse(string? json)
    {
        if (string.IsNullOrWhiteSpace(json))
        {
            return None;
        }

        using var doc = JsonDocument.Parse(json);
        var r = doc.RootElement;
        int? Int(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null;
        string? Str(string name) => r.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var env = r.TryGetProperty("environment", out var e) && e.ValueKind == JsonValueKind.Object
            ? e.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal)
            : new Dictionary<string, string>();
        // The tenant schema names engines as builtin/a1111/comfyui, which are all function engines.
        return new TenantFunctionSettings(Str("defaultEngine"), Int("timeoutSeconds"), Int("memoryMb"), Int("instanceConcurrency"), Int("maxInstances"), env, Str("outputFormat"));
    }
}
