using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Jobs;

/// <summary>
/// AUTOMATIC1111's options object (every key of A1111 1.10, with its default: <c>spec/a1111-options.json</c>), kept per
/// credential: what a token or a session sets with <c>POST /sdapi/v1/options</c> is its own (never the server's, never
/// another caller's), round-trips through <c>GET</c>, and goes with each of its generation requests as
/// <c>override_settings</c> (keys the request sets itself win), so an engine that reads them (a real A1111) honours them.
/// </summary>
public sealed class CallerOptionsService(AtelierDb db, RequestContext ctx, TimeProvider clock, CallerOptionsCache cache)
{
    /// <summary>The largest stored options object.</summary>
    public const int MaxBytes = 64 * 1024;

    /// <summary>Handled elsewhere: the checkpoint is the token's checkpoint config (resolved through the registry).</summary>
    public static readonly IReadOnlySet<string> NotStored = new HashSet<string>(StringComparer.Ordinal) { "sd_model_checkpoint", "sd_checkpoint_hash" };

    private static readonly Lazy<IReadOnlyDictionary<string, JsonElement>> DefaultsValue = new(LoadDefaults);

    /// <summary>A1111 1.10's options with their defaults, in A1111's order.</summary>
    public static IReadOnlyDictionary<string, JsonElement> Defaults => DefaultsValue.Value;

    private string Credential => ctx.Caller?.CredentialId ?? throw new InvalidOperationException("No caller.");

    /// <summary>Every option: A1111's defaults, overlaid with what the caller set.</summary>
    public async Task<Dictionary<string, JsonElement>> GetAsync(CancellationToken ct)
    {
        var all = new Dictionary<string, JsonElement>(Defaults, StringComparer.Ordinal);
        foreach (var (key, value) in await StoredAsync(Credential, ct))
        {
            all[key] = value;
        }

        return all;
    }

    /// <summary>
    /// Stores the caller's changes (merged with what it set before). A key A1111 does not know is refused, as is a value
    /// of another JSON kind than the option's default (a number for a number, …); nothing is stored then.
    /// </summary>
    public async Task SetAsync(IReadOnlyDictionary<string, JsonElement> changes, CancellationToken ct)
    {
        Validate(changes);
        var row = await db.CallerOptions.FirstOrDefaultAsync(o => o.CredentialId == Credential, ct);
        var stored = row is null ? new JsonObject() : JsonNode.Parse(row.OptionsJson)!.AsObject();
        foreach (var (key, value) in changes.Where(c => !NotStored.Contains(c.Key)))
        {
            stored[key] = JsonNode.Parse(value.GetRawText());
        }

        var json = stored.ToJsonString();
        if (json.Length > MaxBytes)
        {
            throw AtelierException.InvalidInput("options", $"the stored options would be larger than {MaxBytes} bytes");
        }

        if (row is null)
        {
            db.CallerOptions.Add(new CallerOptions { CredentialId = Credential, TenantId = ctx.TenantId!, OptionsJson = json, UpdatedAt = clock.GetUtcNow().UtcDateTime });
        }
        else
        {
            row.OptionsJson = json;
            row.UpdatedAt = clock.GetUtcNow().UtcDateTime;
        }

        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("options", "were set at the same moment by another request; send them again"), ct);
        cache.Forget(Credential);
    }

    /// <summary>
    /// A leased job's request with its caller's stored options added to its <c>override_settings</c> (the request's own
    /// keys win): options apply when the job runs, as in A1111, and the queued request (its idempotency hash) stays as sent.
    /// The same text when the caller set none.
    /// </summary>
    public static async Task<string> WithCallerOptionsAsync(AtelierDb db, CallerOptionsCache cache, string? credential, string requestJson, CancellationToken ct)
    {
        if (credential is null)
        {
            return requestJson;
        }

        var stored = await cache.StoredAsync(db, credential, ct);
        if (stored.Count == 0)
        {
            return requestJson;
        }

        var body = JsonNode.Parse(requestJson)!.AsObject();
        if (body["override_settings"] is not JsonObject overrides)
        {
            overrides = new JsonObject();
            body["override_settings"] = overrides;
        }

        foreach (var (key, value) in stored)
        {
            if (!overrides.ContainsKey(key))
            {
                overrides[key] = JsonNode.Parse(value.GetRawText());
            }
        }

        return body.ToJsonString();
    }

    private Task<IReadOnlyDictionary<string, JsonElement>> StoredAsync(string credential, CancellationToken ct) => cache.StoredAsync(db, credential, ct);

    /// <summary>Checks changes before anything is stored: every key an A1111 option, every value of the option's kind.</summary>
    public static void Validate(IReadOnlyDictionary<string, JsonElement> changes)
    {
        var unknown = changes.Keys.Where(k => !Defaults.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        if (unknown.Count > 0)
        {
            throw AtelierException.InvalidInput("options", $"not an AUTOMATIC1111 option: {string.Join(", ", unknown.Take(10))}");
        }

        foreach (var (key, value) in changes)
        {
            if (!SameKind(Defaults[key], value))
            {
                throw AtelierException.InvalidInput(key, $"must be {KindOf(Defaults[key])}, as the option's default ({Defaults[key].GetRawText()})");
            }

            // The options whose values the answers depend on: the image format and its quality.
            if (key == "samples_format" && value.ValueKind == JsonValueKind.String && value.GetString()!.ToLowerInvariant() is not ("png" or "jpg" or "jpeg" or "webp"))
            {
                throw AtelierException.InvalidInput(key, "must be png, jpg, jpeg or webp");
            }

            if (key == "randn_source" && value.ValueKind == JsonValueKind.String && value.GetString()!.ToUpperInvariant() is not ("GPU" or "CPU" or "NV"))
            {
                throw AtelierException.InvalidInput(key, "must be GPU, CPU or NV");
            }

            if (key == "jpeg_quality" && value.ValueKind == JsonValueKind.Number && value.GetDouble() is < 1 or > 100)
            {
                throw AtelierException.InvalidInput(key, "must be a number from 1 to 100");
            }
        }
    }

    private static bool SameKind(JsonElement model, JsonElement value) => model.ValueKind switch
    {
        JsonValueKind.True or JsonValueKind.False => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        JsonValueKind.Null => true,
        _ => value.ValueKind == model.ValueKind || value.ValueKind == JsonValueKind.Null,
    };

    private static string KindOf(JsonElement model) => model.ValueKind switch
    {
        JsonValueKind.True or JsonValueKind.False => "true or false",
        JsonValueKind.Number => "a number",
        JsonValueKind.String => "a string",
        JsonValueKind.Array => "a list",
        _ => "an object",
    };

    private static Dictionary<string, JsonElement> LoadDefaults()
    {
        using var stream = typeof(CallerOptionsService).Assembly.GetManifestResourceStream("Atelier.Core.Jobs.a1111-options.json")
                           ?? throw new InvalidOperationException("The A1111 options table is not embedded.");
        using var doc = JsonDocument.Parse(stream);
        var options = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var option in doc.RootElement.GetProperty("options").EnumerateObject())
        {
            options[option.Name] = option.Value.Clone();
        }

        return options;
    }
}

/// <summary>Each credential's stored options for a few seconds (every generation request reads them); forgotten on this replica when set.</summary>
public sealed class CallerOptionsCache(TimeProvider clock)
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(15);

    private readonly ConcurrentDictionary<string, (IReadOnlyDictionary<string, JsonElement> Options, long At)> _known = new(StringComparer.Ordinal);

    /// <summary>What the credential set (any tenant: the lease path reads it for the job's caller).</summary>
    public async Task<IReadOnlyDictionary<string, JsonElement>> StoredAsync(AtelierDb db, string credential, CancellationToken ct)
    {
        if (TryGet(credential, out var hit))
        {
            return hit;
        }

        var json = await db.CallerOptions.IgnoreQueryFilters().AsNoTracking().Where(o => o.CredentialId == credential).Select(o => o.OptionsJson).FirstOrDefaultAsync(ct);
        var stored = json is null
            ? new Dictionary<string, JsonElement>(StringComparer.Ordinal)
            : JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(json) ?? new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        Put(credential, stored);
        return stored;
    }

    public bool TryGet(string credential, out IReadOnlyDictionary<string, JsonElement> options)
    {
        if (_known.TryGetValue(credential, out var hit) && clock.GetElapsedTime(hit.At) < MaxAge)
        {
            options = hit.Options;
            return true;
        }

        options = null!;
        return false;
    }

    public void Put(string credential, IReadOnlyDictionary<string, JsonElement> options)
    {
        if (_known.Count > 100_000)
        {
            _known.Clear();
        }

        _known[credential] = (options, clock.GetTimestamp());
    }

    public void Forget(string credential) => _known.TryRemove(credential, out _);
}
