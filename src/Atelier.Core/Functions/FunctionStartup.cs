using System.Text.Json;
using Atelier.Contracts;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Functions;

/// <summary>
/// At start: the <c>local</c> region exists, the built-in templates (<c>a1111-engine</c>: our own <c>atelier engine</c>;
/// <c>a1111</c>: an existing AUTOMATIC1111 command line) match this installation, and every region names a backend
/// this process has.
/// </summary>
public static class FunctionStartup
{
    public const string EngineTemplate = "a1111-engine";
    public const string A1111Template = "a1111";

    /// <summary>Answers the regions whose backend is unknown here, as "region (backend)".</summary>
    public static async Task<IReadOnlyList<string>> EnsureAsync(AtelierDb db, IReadOnlyCollection<string> backends, string dataDirectory, TimeProvider clock, CancellationToken ct)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        if (!await db.Regions.AnyAsync(r => r.Name == RuntimeRegions.DefaultRegion, ct))
        {
            db.Regions.Add(new Region { Name = RuntimeRegions.DefaultRegion, Backend = "local", CreatedAt = now, UpdatedAt = now });
        }

        var (command, prefix) = Common.ThisExecutable.Command();
        var models = Path.GetFullPath(Path.Combine(dataDirectory, "engine-models"));
        await EnsureTemplateAsync(db, EngineTemplate, "Atelier's built-in ONNX engine (atelier engine) speaking the AUTOMATIC1111 API; the demo model by default.",
            "builtin", command, [.. prefix, "engine", "--urls", "http://127.0.0.1:{port}", "--models", "{{modelsDirectory}}"],
            """{"type":"object","additionalProperties":false,"properties":{"modelsDirectory":{"type":"string","minLength":1,"maxLength":1024,"default":""" + JsonSerializer.Serialize(models) + "}}}",
            clock, ct);
        await EnsureTemplateAsync(db, A1111Template, "An existing AUTOMATIC1111 webui started with --api --nowebui on the instance's port.",
            "a1111", "{{launcher}}", ["--api", "--nowebui", "--port", "{port}", "--skip-version-check"],
            """{"type":"object","additionalProperties":false,"properties":{"launcher":{"type":"string","minLength":1,"maxLength":1024,"default":"/opt/stable-diffusion-webui/webui.sh"}}}""",
            clock, ct);
        await db.SaveChangesAsync(ct);
        return [.. (await db.Regions.AsNoTracking().ToListAsync(ct)).Where(r => !backends.Contains(r.Backend)).Select(r => $"{r.Name} ({r.Backend})")];
    }

    private static async Task EnsureTemplateAsync(AtelierDb db, string name, string description, string engine, string command, IReadOnlyList<string> args, string schema,
        TimeProvider clock, CancellationToken ct)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var t = await db.FunctionTemplates.FirstOrDefaultAsync(x => x.Name == name, ct);
        if (t is null)
        {
            t = new FunctionTemplate { Id = Common.Ids.New("ftp", clock), Name = name, Engine = engine, CreatedAt = now };
            db.FunctionTemplates.Add(t);
        }

        // Built-in templates follow the installation (its executable's path moves with it); an operator's edits to them do not survive a start.
        t.Description = description;
        t.Engine = engine;
        t.Command = command;
        t.ArgsJson = JsonSerializer.Serialize(args, AtelierJson.Options);
        t.HealthPath = "/sdapi/v1/options";
        t.InstanceConcurrency = 1;
        t.TimeoutSeconds = 600;
        t.ParametersSchemaJson = schema;
        t.BuiltIn = true;
        t.UpdatedAt = now;
    }
}
