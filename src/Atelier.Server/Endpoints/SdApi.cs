using System.Text.Json;
using Atelier.Contracts.A1111;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Contracts.Workers;
using Atelier.Core.Common;
using Atelier.Core.Jobs;
using Atelier.Core.Models;
using Atelier.Engine.Sampling;
using Atelier.Server.Auth;
using Atelier.Storage;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Endpoints;

/// <summary>
/// AUTOMATIC1111's API on the server, for clients that already speak it: <c>txt2img</c> and <c>img2img</c> are
/// synchronous (a job, leased by a worker, waited for), in A1111's request and response shapes. Models come from the
/// tenant's registry, options belong to the calling token, progress and interrupt act on the caller's own tasks.
/// Credentials: an API token or a session credential, as Bearer or as HTTP Basic (the password, for <c>--api-auth</c>).
/// </summary>
public static class SdApi
{
    public static IEndpointRouteBuilder MapSdApi(this IEndpointRouteBuilder routes)
    {
        var api = routes.MapGroup("/sdapi/v1").WithTags("AUTOMATIC1111").RequireAccess(Access.TenantOrSession);
        api.MapPost("/txt2img", (JsonElement body, HttpContext http, CancellationToken ct) => RunAsync("txt2img", body, http, ct)).WithName("SdTxt2Img");
        api.MapPost("/img2img", (JsonElement body, HttpContext http, CancellationToken ct) => RunAsync("img2img", body, http, ct)).WithName("SdImg2Img");
        api.MapGet("/sd-models", SdModels).WithName("SdModels");
        api.MapGet("/loras", Loras).WithName("SdLoras");
        api.MapGet("/embeddings", Embeddings).WithName("SdEmbeddings");
        api.MapGet("/samplers", () => Results.Json(Sampler.All.Select(s => new SamplerItem(s.Name, Sampler.AliasesOf(s.Name), [])), Snake)).WithName("SdSamplers");
        api.MapGet("/schedulers", () => Results.Json(Schedules.All.Select(s =>
            new SchedulerItem(s.Name, s.Label, s.Aliases.Count == 0 ? null : s.Aliases, s.DefaultRho, s.NeedInnerModel)), Snake)).WithName("SdSchedulers");
        api.MapGet("/options", GetOptions).WithName("SdGetOptions");
        api.MapPost("/options", SetOptions).WithName("SdSetOptions");
        api.MapGet("/progress", Progress).WithName("SdProgress");
        api.MapPost("/interrupt", Interrupt).WithName("SdInterrupt");
        api.MapPost("/png-info", PngInfo).WithName("SdPngInfo");
        api.MapPost("/skip", () => Results.Json(new { })).WithName("SdSkip");
        api.MapGet("/sd-vae", SdVae).WithName("SdVae");
        api.MapGet("/upscalers", () => Results.Json(A1111Stock.Upscalers)).WithName("SdUpscalers");
        api.MapPost("/extra-single-image", (JsonElement body, CancellationToken ct) => ExtrasAsync(() => Engine.Images.Upscaling.OneImage(body), ct)).WithName("SdExtraSingleImage");
        api.MapPost("/extra-batch-images", (JsonElement body, CancellationToken ct) => ExtrasAsync(() => Engine.Images.Upscaling.ManyImages(body), ct)).WithName("SdExtraBatchImages");
        foreach (var none in A1111Stock.EmptyListRoutes)
        {
            api.MapGet("/" + none, () => Results.Json(A1111Stock.None)).WithName("Sd" + string.Concat(none.Split('-').Select(w => char.ToUpperInvariant(w[0]) + w[1..])));
        }

        api.MapGet("/scripts", () => Results.Json(A1111Stock.Scripts)).WithName("SdScripts");
        api.MapGet("/script-info", () => Results.Json(A1111Stock.ScriptInfo(Engine.Images.Upscaling.Upscalers))).WithName("SdScriptInfo");
        api.MapGet("/cmd-flags", () => Results.Json(A1111Stock.CmdFlags("", 0))).WithName("SdCmdFlags");
        api.MapGet("/memory", () => Results.Json(A1111Stock.Memory())).WithName("SdMemory");
        api.MapPost("/interrogate", () => Results.Json(A1111Stock.InterrogateMissing, statusCode: 404)).WithName("SdInterrogate");
        // The registry is read live, and the server loads no checkpoint of its own: these have nothing to do.
        foreach (var nothing in A1111Stock.NothingToDoRoutes.Concat(["refresh-checkpoints", "refresh-loras"]))
        {
            api.MapPost("/" + nothing, () => Results.Json(new { })).WithName("Sd" + string.Concat(nothing.Split('-').Select(w => char.ToUpperInvariant(w[0]) + w[1..])));
        }

        routes.MapGet("/internal/ping", () => Results.Json(new { })).WithTags("AUTOMATIC1111").WithName("SdPing");
        return routes;
    }

    /// <summary>At most two extras run at once on a replica (each holds a few images' worth of pixels in memory).</summary>
    private static readonly SemaphoreSlim ExtrasGate = new(2);

    /// <summary>
    /// A1111's extras with the upscalers that need no model (None, Lanczos, Nearest), run here: the work is a resize,
    /// not a model. A request it cannot run is <c>p_common_inputinvalid</c> with the reason (and A1111's <c>detail</c>).
    /// </summary>
    private static async Task<IResult> ExtrasAsync(Func<Dictionary<string, object>> run, CancellationToken ct)
    {
        await ExtrasGate.WaitAsync(ct);
        try
        {
            return Results.Json(await Task.Run(run, ct));
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or EndOfStreamException)
        {
            throw AtelierException.InvalidInput("image", e.Message);
        }
        finally
        {
            ExtrasGate.Release();
        }
    }

    /// <summary>A1111's <c>png-info</c>: the image's text chunks and its parsed infotext, or A1111's error.</summary>
    private static IResult PngInfo(PngInfoRequest req)
    {
        var read = Engine.Images.PngInfo.Read(req.Image);
        return read.Error is null
            ? Results.Json(new PngInfoResponse(read.Info, read.Items, read.Parameters))
            : Results.Json(new { detail = read.Error }, statusCode: read.Status);
    }

    private static readonly JsonSerializerOptions Snake = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// Queues the request and waits for it. A client that goes away cancels its job (nobody would read the result).
    /// With <c>Accept: image/png</c> the answer is the first image itself, for <c>curl -o out.png</c>. When the worker's
    /// upload and completion came to this replica, the result and the images are taken from memory (<see cref="JobHandoff"/>)
    /// instead of being read back: they were stored and committed first all the same.
    /// </summary>
    private static async Task<IResult> RunAsync(string kind, JsonElement body, HttpContext http, CancellationToken ct)
    {
        var sp = http.RequestServices;
        sp.GetRequiredService<RateLimits>().HoldSyncWait(http, sp.GetRequiredService<RequestContext>().Caller!.CredentialId);
        var svc = sp.GetRequiredService<JobService>();
        // Expected from the moment the job is committed, before a worker can hear of it and upload.
        using var handed = sp.GetRequiredService<JobHandoff>().Expect();
        var (job, _) = await svc.SubmitAsync(await svc.CallerAgentAsync(ct), kind, body, null, null, ct, queued: handed.Start);
        var timeout = PredictApi.SyncTimeout(sp.GetRequiredService<IOptions<JobsOptions>>());
        JobDto? done;
        try
        {
            done = await WaitAsync(svc, sp.GetRequiredService<JobWatch>(), sp.GetRequiredService<TimeProvider>(), job.Id, handed, timeout, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            await svc.CancelAsync(job.AgentId, job.Id, CancellationToken.None);
            throw;
        }

        WorkerResult? result;
        if (done is null)
        {
            result = handed.Result; // succeeded, and handed over here
        }
        else
        {
            if (!JobStates.IsTerminal(done.State))
            {
                await svc.CancelAsync(done.AgentId, done.Id, CancellationToken.None);
                throw new AtelierException(ErrorCatalog.b_predict_predictfail, errCode: ErrCodes.Timeout, status: 504,
                    errMessage: $"job {done.Id} did not finish within {timeout.TotalSeconds:0} s (is a worker running?); it was canceled");
            }

            if (done.State == JobStates.Failed)
            {
                throw PredictApi.ErrorOf(done, sp.GetRequiredService<StorageOptions>().FullRetryAfterSeconds);
            }

            result = await svc.WorkerResultAsync(done.Id, ct);
        }

        var images = new List<string>();
        var sendImages = !body.TryGetProperty("send_images", out var send) || send.ValueKind != JsonValueKind.False;
        if (http.Request.Headers.Accept.ToString().Contains("image/png", StringComparison.OrdinalIgnoreCase))
        {
            var first = result is { Images.Count: > 0 } ? result.Images[0]
                        : throw new AtelierException(ErrorCatalog.b_predict_predictfail, errCode: done?.State ?? JobStates.Succeeded,
                            errMessage: $"job {job.Id} ended {done?.State ?? JobStates.Succeeded} without an image");
            return handed.ImageOf(first.Key) is { } bytes ? Results.Bytes(bytes, "image/png") : Results.Stream(await svc.OpenStoredImageAsync(first, ct), "image/png");
        }

        // A1111's samples_format and jpeg_quality, from the request's override_settings, else the caller's stored options:
        // the stored PNG as it is, or re-encoded as JPEG or WebP with the infotext in EXIF, as A1111's API does.
        var (format, quality) = await SampleFormatAsync(body, sp.GetRequiredService<CallerOptionsService>(), ct);
        foreach (var image in sendImages ? result?.Images ?? [] : [])
        {
            var png = handed.ImageOf(image.Key) ?? await svc.ReadStoredImageAsync(image, ct);
            images.Add(Convert.ToBase64String(Engine.Images.SampleFormats.FromPng(png, format, quality)));
        }

        object parameters = result?.Parameters is { } p ? p : body;
        return Results.Json(new { images, parameters, info = result?.Info ?? "" });
    }

    /// <summary>
    /// Waits until the job is finished (woken by its completion, looking again at least every second), or the timeout:
    /// the job as it stands then, or null when its completion handed the result over on this replica (it succeeded).
    /// </summary>
    private static async Task<JobDto?> WaitAsync(JobService svc, JobWatch watch, TimeProvider clock, string jobId, JobHandoff.Expectation handed,
        TimeSpan timeout, CancellationToken ct)
    {
        var deadline = clock.GetUtcNow() + timeout;
        while (true)
        {
            // Watch before looking: a job finished in between ends the wait at once (on a fake clock nothing else would).
            using var change = watch.Watch(jobId);
            if (handed.Result is not null)
            {
                return null;
            }

            var job = await svc.ReloadAsync(jobId, ct);
            var left = deadline - clock.GetUtcNow();
            if (JobStates.IsTerminal(job.State) || left <= TimeSpan.Zero)
            {
                return job;
            }

            await change.WaitAsync(left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1), ct);
        }
    }

    private static async Task<(string Format, int Quality)> SampleFormatAsync(JsonElement body, CallerOptionsService options, CancellationToken ct)
    {
        JsonElement? Override(string key) =>
            body.TryGetProperty("override_settings", out var o) && o.ValueKind == JsonValueKind.Object && o.TryGetProperty(key, out var v) ? v : null;
        var format = Override("samples_format");
        var quality = Override("jpeg_quality");
        if (format is null || quality is null)
        {
            var stored = await options.GetAsync(ct);
            format ??= stored.GetValueOrDefault("samples_format");
            quality ??= stored.GetValueOrDefault("jpeg_quality");
        }

        var name = format is { ValueKind: JsonValueKind.String } f && Engine.Images.SampleFormats.IsKnown(f.GetString()) ? f.GetString()! : Engine.Images.SampleFormats.Png;
        return (name, quality is { ValueKind: JsonValueKind.Number } q ? (int)Math.Round(Math.Clamp(q.GetDouble(), 1, 100)) : Engine.Images.SampleFormats.DefaultQuality);
    }

    private static async Task<IResult> SdModels(ModelResolver resolver, CancellationToken ct) =>
        Results.Json((await resolver.ListUsableAsync(ModelResolver.Checkpoints, ct)).Select(m =>
            new SdModel(m.Title, m.Name, m.ShortHash ?? "", m.Sha256 ?? "", $"{m.Name}/{m.VersionName}", null)), Snake);

    private static async Task<IResult> SdVae(ModelResolver resolver, CancellationToken ct) =>
        Results.Json((await resolver.ListUsableAsync(["vae"], ct)).Select(m => new { model_name = m.Name, filename = $"{m.Name}/{m.VersionName}" }));

    private static async Task<IResult> Loras(ModelResolver resolver, CancellationToken ct) =>
        Results.Json((await resolver.ListUsableAsync(["lora"], ct)).Select(m =>
            new { name = m.Name, alias = m.Name, path = $"{m.Name}/{m.VersionName}", metadata = new { } }));

    private static async Task<IResult> Embeddings(ModelResolver resolver, CancellationToken ct) =>
        Results.Json(new
        {
            loaded = (await resolver.ListUsableAsync(["embedding"], ct)).DistinctBy(m => m.Name)
                .ToDictionary(m => m.Name, m => new { step = (int?)null, sd_checkpoint = (string?)null, sd_checkpoint_name = (string?)null, shape = 768, vectors = 1 }),
            skipped = new { },
        });

    /// <summary>
    /// The caller's options: every key of A1111 1.10 with its default, overlaid with what this credential set, and its
    /// checkpoint (its token's checkpoint config, or the one it would get).
    /// </summary>
    private static async Task<IResult> GetOptions(ModelResolver resolver, CallerOptionsService options, CancellationToken ct)
    {
        ResolvedModel? model = null;
        try
        {
            model = await resolver.ResolveAsync(null, ct);
        }
        catch (AtelierException)
        {
            // No usable checkpoint yet: A1111 reports an empty one.
        }

        var all = await options.GetAsync(ct);
        var answer = new Dictionary<string, object?>(all.Count + 2, StringComparer.Ordinal);
        foreach (var (key, value) in all)
        {
            answer[key] = value;
        }

        answer["sd_model_checkpoint"] = model?.Title ?? "";
        answer["sd_checkpoint_hash"] = model?.Sha256 ?? "";
        return Results.Json(answer);
    }

    /// <summary>
    /// Sets options for the calling credential only (never for the whole server, never for another caller): the
    /// checkpoint as the token's checkpoint config, every other A1111 key stored for it and sent with its generation
    /// requests. An unknown key or a value of the wrong kind is refused before anything changes.
    /// </summary>
    private static async Task<IResult> SetOptions(Dictionary<string, JsonElement> changes, ModelResolver resolver, CheckpointService checkpoints,
        CallerOptionsService options, CancellationToken ct)
    {
        CallerOptionsService.Validate(changes);
        if (changes.TryGetValue("sd_model_checkpoint", out var checkpoint))
        {
            if (checkpoint.ValueKind != JsonValueKind.String)
            {
                throw AtelierException.InvalidInput("sd_model_checkpoint", "must be a string");
            }

            var model = await resolver.ResolveAsync(checkpoint.GetString(), ct);
            await checkpoints.SetCheckpointAsync(new Contracts.Models.CheckpointConfigRequest(model.VersionId), ct);
        }

        await options.SetAsync(changes, ct);
        return Results.Content("null", "application/json");
    }

    /// <summary>
    /// A1111's progress of the caller's newest task, with the worker's latest live preview as <c>current_image</c> (base64
    /// PNG) while it runs, unless <c>skip_current_image</c>.
    /// </summary>
    private static async Task<IResult> Progress(JobService svc, TimeProvider clock, CancellationToken ct, bool? skip_current_image = null)
    {
        var job = await svc.NewestOwnAsync(ct);
        string? image = null;
        if (skip_current_image != true && job is { State: JobStates.Running, Progress.PreviewStep: not null })
        {
            try
            {
                image = Convert.ToBase64String((await svc.PreviewAsync(job.AgentId, job.Id, ct)).Png);
            }
            catch (AtelierException)
            {
                // The job ended between the two reads: no preview.
            }
        }

        var active = job is not null && !JobStates.IsTerminal(job.State);
        var state = new ProgressState(false, job?.State is JobStates.Canceled or JobStates.Aborted, active ? job!.Id : "", active ? 1 : 0,
            job?.CreatedAt.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture) ?? "0", 0,
            job?.Progress.Step ?? 0, job?.Progress.Steps ?? 0);
        var fraction = job?.Progress.Fraction ?? 0;
        var eta = active && job!.StartedAt is { } started && fraction > 0
            ? (clock.GetUtcNow().UtcDateTime - started).TotalSeconds * (1 - fraction) / fraction : 0;
        return Results.Json(new ProgressResponse(active ? fraction : job is null ? 0 : 1, Math.Max(0, eta), state, image,
            job is null ? null : active ? job.State : "Done"), Snake);
    }

    private static async Task<IResult> Interrupt(JobService svc, CancellationToken ct)
    {
        await svc.InterruptOwnAsync(ct);
        return Results.Json(new { });
    }
}
