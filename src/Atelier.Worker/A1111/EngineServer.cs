using System.Globalization;
using System.Text.Json;
using Atelier.Contracts.A1111;
using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using Atelier.Engine.Sampling;
using Microsoft.AspNetCore.Http.Json;
using Scalar.AspNetCore;

namespace Atelier.Worker.A1111;

/// <summary>
/// <c>atelier engine</c>: the built-in engine as a standalone server speaking the AUTOMATIC1111 API. One job runs at a
/// time (as in A1111); progress is global and per task (<c>force_task_id</c> / <c>id_task</c>).
/// </summary>
public static partial class EngineServer
{
    [LoggerMessage(5014, LogLevel.Warning, "{Reason}")]
    private static partial void LogDeviceFallback(ILogger logger, string reason);

    [LoggerMessage(5015, LogLevel.Information, "The built-in engine runs on {Device} ({Provider})")]
    private static partial void LogDevice(ILogger logger, string device, string provider);

    public static WebApplication Build(string[] args)
    {
        // Configuration is read once: a reload watcher would watch every folder under the content root (models included).
        var builder = WebApplication.CreateBuilder(["--hostBuilder:reloadConfigOnChange=false", .. args]);
        var options = new EngineOptions();
        builder.Configuration.GetSection(EngineOptions.SectionName).Bind(options);
        builder.WebHost.UseUrls(options.Urls);
        builder.Logging.ClearProviders();
        builder.Logging.AddJsonConsole(o => o.UseUtcTimestamp = true);
        builder.Services.Configure<JsonOptions>(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.PropertyNameCaseInsensitive = true;
        });
        // The device first: a worker should say at once what runs, and refuse to start on a device that cannot.
        var device = ExecutionProviders.Start(options.DeviceSettings());
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(device);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<EngineState>();
        builder.Services.AddHealthChecks();
        builder.Services.AddOpenApi();
        var app = builder.Build();
        // What A1111's API answers for an error it did not expect (a model that does not load, …): 500 with its fields,
        // never an empty body.
        app.UseExceptionHandler(error => error.Run(async http =>
        {
            var failure = http.Features.Get<Microsoft.AspNetCore.Diagnostics.IExceptionHandlerFeature>()?.Error;
            http.Response.StatusCode = StatusCodes.Status500InternalServerError;
            await http.Response.WriteAsJsonAsync(new { error = failure?.GetType().Name ?? "Exception", detail = "", body = "", errors = failure?.Message ?? "" });
        }));
        app.MapA1111Api();
        // The API's description (/openapi/v1.json) and a page to read and try it, at /docs as A1111's is.
        app.MapOpenApi();
        app.MapScalarApiReference("/docs", o => o.WithTitle("atelier engine — AUTOMATIC1111 API"));
        // Alive while the process answers (the engine has no dependency to check).
        app.MapHealthChecks("/healthz");
        _ = app.Services.GetRequiredService<EngineState>(); // builds the demo model and scans models at start, not on the first request
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Atelier.Engine");
        if (device.Warning is { } warning)
        {
            LogDeviceFallback(log, warning);
        }

        LogDevice(log, device.Device.ToString(), device.Provider);
        return app;
    }

    /// <summary>An extras answer, or A1111's <c>detail</c> with 422 for a request it cannot run.</summary>
    private static IResult Extras(Func<Dictionary<string, object>> run)
    {
        try
        {
            return Results.Json(run());
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or EndOfStreamException)
        {
            return Results.Json(new { detail = e.Message }, statusCode: 422);
        }
    }

    /// <summary>The port of the first URL the engine listens on (<c>http://+:7860</c> is not a URI), else A1111's 7860.</summary>
    private static int PortOf(string urls) =>
        System.Text.RegularExpressions.Regex.Match(urls.Split(';')[0], @":(\d+)/?$") is { Success: true } m ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 7860;

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
        api.MapGet("/samplers", () => Sampler.All.Select(s => new SamplerItem(s.Name, Sampler.AliasesOf(s.Name), [])));
        api.MapGet("/schedulers", () => Schedules.All.Select(s => new SchedulerItem(s.Name, s.Label, s.Aliases.Count == 0 ? null : s.Aliases, s.DefaultRho, s.NeedInnerModel)));
        api.MapGet("/embeddings", (EngineState state) => Results.Json(new { loaded = Embeddings(state.Embeddings, loaded: true), skipped = Embeddings(state.Embeddings, loaded: false) }));
        api.MapGet("/loras", (EngineState state) => Results.Json(state.Loras.Select(l => new
        {
            name = l.Name, alias = l.Name, path = l.Path, metadata = Engine.Lora.SafeTensorsMetadata.TryRead(l.Path),
        })));
        api.MapPost("/refresh-loras", () => Results.Json(new { }));
        api.MapPost("/png-info", (PngInfoRequest req) => PngInfo(req));
        api.MapGet("/sd-vae", (EngineState state) => Results.Json(state.Vaes.Select(v => new { model_name = v.Name, filename = v.Path })));
        api.MapGet("/upscalers", (EngineState state) => Results.Json(A1111Stock.Upscalers.Concat(state.Upscalers.Select(u =>
            (object)new { name = u.Name, model_name = u.Name, model_path = u.Path, model_url = (string?)null, scale = (double?)null }))));
        api.MapPost("/extra-single-image", (JsonElement body, EngineState state) => Extras(() => Upscaling.OneImage(body, state.Upscalers)));
        api.MapPost("/extra-batch-images", (JsonElement body, EngineState state) => Extras(() => Upscaling.ManyImages(body, state.Upscalers)));
        foreach (var none in A1111Stock.EmptyListRoutes)
        {
            api.MapGet("/" + none, () => Results.Json(A1111Stock.None));
        }

        api.MapGet("/scripts", () => Results.Json(A1111Stock.Scripts));
        api.MapGet("/script-info", (EngineState state) => Results.Json(A1111Stock.ScriptInfo(Adapters.EngineJob.UpscalerNames(state.Upscalers))));
        api.MapGet("/cmd-flags", (EngineOptions options) => Results.Json(A1111Stock.CmdFlags(options.ModelsDirectory, PortOf(options.Urls))));
        api.MapGet("/memory", () => Results.Json(A1111Stock.Memory()));
        api.MapPost("/interrogate", () => Results.Json(A1111Stock.InterrogateMissing, statusCode: 404));
        foreach (var nothing in A1111Stock.NothingToDoRoutes)
        {
            api.MapPost("/" + nothing, () => Results.Json(new { }));
        }

        routes.MapGet("/internal/ping", () => Results.Json(new { }));
        return routes;
    }

    /// <summary>A1111's <c>png-info</c>: the image's text chunks and its parsed infotext, or A1111's error.</summary>
    public static IResult PngInfo(PngInfoRequest req)
    {
        var read = Engine.Images.PngInfo.Read(req.Image);
        return read.Error is null
            ? Results.Json(new PngInfoResponse(read.Info, read.Items, read.Parameters))
            : Results.Json(new { detail = read.Error }, statusCode: read.Status);
    }

    internal static string Invariant(double v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>A1111's embeddings listing: those that load (<c>{step, sd_checkpoint, sd_checkpoint_name, shape, vectors}</c>), or those that do not.</summary>
    private static Dictionary<string, object?> Embeddings(IReadOnlyList<Engine.Lora.NetworkFile> files, bool loaded)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var file in files)
        {
            try
            {
                var embedding = Engine.Lora.Embedding.Load(file);
                if (loaded)
                {
                    result[file.Name] = new { step = (int?)null, sd_checkpoint = (string?)null, sd_checkpoint_name = (string?)null, shape = embedding.Width, vectors = embedding.Count };
                }
            }
            catch (Exception e) when (e is InvalidDataException or IOException)
            {
                if (!loaded)
                {
                    result[file.Name] = new { step = (int?)null, sd_checkpoint = (string?)null, sd_checkpoint_name = (string?)null, shape = 0, vectors = 0 };
                }
            }
        }

        return result;
    }
}
