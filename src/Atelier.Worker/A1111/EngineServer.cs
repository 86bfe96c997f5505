using System.Globalization;
using System.Text.Json;
using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using Atelier.Engine.Sampling;
using Microsoft.AspNetCore.Http.Json;

namespace Atelier.Worker.A1111;

/// <summary>Configuration of <c>atelier engine</c> (section <c>Atelier:Engine</c>).</summary>
public sealed class EngineOptions
{
    public const string Section = "Atelier:Engine";
    public string Urls { get; set; } = "http://127.0.0.1:7860";
    /// <summary>Folder of diffusers ONNX model folders; the demo model is built here when it holds none.</summary>
    public string ModelsDirectory { get; set; } = "data/models";
    public long MemoryBudgetBytes { get; set; } = 8L * 1024 * 1024 * 1024;
    public bool UseCuda { get; set; }
}

/// <summary>
/// <c>atelier engine</c>: the built-in engine as a standalone server speaking the AUTOMATIC1111 API. One job runs at a
/// time (as in A1111); progress is global and per task (<c>force_task_id</c> / <c>id_task</c>).
/// </summary>
public static class EngineServer
{
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        var options = new EngineOptions();
        builder.Configuration.GetSection(EngineOptions.Section).Bind(options);
        builder.WebHost.UseUrls(options.Urls);
        builder.Logging.ClearProviders();
        builder.Logging.AddJsonConsole(o => o.UseUtcTimestamp = true);
        builder.Services.Configure<JsonOptions>(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.PropertyNameCaseInsensitive = true;
        });
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<EngineState>();
        var app = builder.Build();
        app.MapA1111Api();
        _ = app.Services.GetRequiredService<EngineState>(); // builds the demo model and scans models at start, not on the first request
        return app;
    }

    /// <summary>Builds the demo model (a tiny pipeline, no download) unless the folder already has a model.</summary>
    public static string EnsureDemoModel(string modelsDirectory)
    {
        var demo = Path.Combine(modelsDirectory, "atelier-demo");
        if (ModelEntry.Scan(modelsDirectory).Count == 0)
        {
            TinyPipeline.Write(demo, new TinyPipelineOptions(A: 0.6f, B: 0.4f));
        }

        return demo;
    }

    public static IEndpointRouteBuilder MapA1111Api(this IEndpointRouteBuilder routes)
    {
        var api = routes.MapGroup("/sdapi/v1");
        api.MapPost("/txt2img", (A1111Request req, EngineState state, CancellationToken ct) => state.RunAsync(req, img2img: false, ct));
        api.MapPost("/img2img", (A1111Request req, EngineState state, CancellationToken ct) => state.RunAsync(req, img2img: true, ct));
        api.MapGet("/progress", (bool? skip_current_image, string? id_task, EngineState state) => state.Progress(skip_current_image ?? false, id_task));
        api.MapPost("/interrupt", (EngineState state) => { state.Interrupt(); return Results.Json(new { }); });
        api.MapPost("/skip", (EngineState state) => { state.Skip(); return Results.Json(new { }); });
        api.MapGet("/options", (EngineState state) => Results.Json(state.Options));
        api.MapPost("/options", (Dictionary<string, JsonElement> changes, EngineState state) => { state.SetOptions(changes); return Results.Json(new { }); });
        api.MapGet("/sd-models", (EngineState state) => state.Models.Select(m =>
            new SdModel(m.Title, m.Name, m.ShortHash, m.Sha256, Path.Combine(m.Folder, "model_index.json"), null)));
        api.MapPost("/refresh-checkpoints", (EngineState state) => { state.Rescan(); return Results.Json(new { }); });
        api.MapGet("/samplers", () => Sampler.All.Select(s => new SamplerItem(s.Name, Aliases(s.Name), [])));
        api.MapGet("/schedulers", () => Schedules.Names.Select(n =>
            new SchedulerItem(n.ToLowerInvariant(), n, null, n == "Karras" ? 7.0 : null, false)));
        api.MapGet("/embeddings", () => Results.Json(new { loaded = new { }, skipped = new { } }));
        api.MapGet("/loras", () => Results.Json(Array.Empty<object>()));
        api.MapPost("/refresh-loras", () => Results.Json(new { }));
        api.MapPost("/png-info", (PngInfoRequest req) => PngInfo(req));
        return routes;
    }

    public static string[] Aliases(string sampler) => sampler switch
    {
        "Euler" => ["k_euler"],
        "Euler a" => ["k_euler_a", "k_euler_ancestral"],
        "DPM++ 2M" => ["k_dpmpp_2m"],
        "LMS" => ["k_lms"],
        _ => [],
    };

    public static IResult PngInfo(PngInfoRequest req)
    {
        if (string.IsNullOrEmpty(req.Image))
        {
            return Results.Json(new { detail = "Image not found" }, statusCode: 404);
        }

        var bytes = DecodeBase64Image(req.Image);
        if (bytes is null)
        {
            return Results.Json(new { detail = "Invalid encoded image" }, statusCode: 400);
        }

        var items = Png.ReadText(bytes);
        items.Remove("parameters", out var info);
        if (info is null)
        {
            return Results.Json(new PngInfoResponse("", items, []));
        }

        var (prompt, negative, parameters) = Infotext.Parse(info);
        parameters["Prompt"] = prompt;
        parameters["Negative prompt"] = negative;
        return Results.Json(new PngInfoResponse(info, items, parameters));
    }

    /// <summary>Bare base64 or a <c>data:</c> URL, as A1111 accepts; null when it is neither.</summary>
    public static byte[]? DecodeBase64Image(string text)
    {
        var comma = text.StartsWith("data:", StringComparison.Ordinal) ? text.IndexOf(',', StringComparison.Ordinal) : -1;
        try
        {
            return Convert.FromBase64String(comma >= 0 ? text[(comma + 1)..] : text);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    internal static string Invariant(double v) => v.ToString(CultureInfo.InvariantCulture);
}
