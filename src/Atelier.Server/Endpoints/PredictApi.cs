using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Core.Jobs;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Endpoints;

/// <summary>
/// The async predict API: <c>POST /api/v1/predict/txt2img|img2img</c> take an A1111 body and answer at once with a task
/// (a job of the tenant's default agent); the task is followed by progress, result, images, a server-sent-events
/// stream, and stopped by cancellation. Any credential of the tenant; a session sees its own tasks only.
/// </summary>
public static class PredictApi
{
    public const string IdempotencyHeader = "Idempotency-Key";

    public static IEndpointRouteBuilder MapPredictApi(this IEndpointRouteBuilder routes)
    {
        var predict = routes.MapGroup("/api/v1/predict").WithTags("Predict").RequireAccess(Access.TenantOrSession);
        predict.MapPost("/txt2img", (JsonElement body, JobService svc, HttpContext http, CancellationToken ct) => Submit("txt2img", body, svc, http, ct)).WithName("PredictTxt2Img");
        predict.MapPost("/img2img", (JsonElement body, JobService svc, HttpContext http, CancellationToken ct) => Submit("img2img", body, svc, http, ct)).WithName("PredictImg2Img");
        // A whole ComfyUI workflow (API format) and the pictures its LoadImage nodes name, for an agent of ComfyUI workers.
        predict.MapPost("/comfyui", (JsonElement body, JobService svc, HttpContext http, CancellationToken ct) => Submit(ComfyWorkflow.Kind, body, svc, http, ct)).WithName("PredictComfyUi");

        var tasks = routes.MapGroup("/api/v1/tasks/{taskId}").WithTags("Predict").RequireAccess(Access.TenantOrSession);
        tasks.MapGet("/", GetTask).WithName("GetTask");
        tasks.MapGet("/progress", GetTask).WithName("TaskProgress");
        tasks.MapGet("/result", Result).WithName("TaskResult");
        tasks.MapPost("/cancellation", Cancel).WithName("CancelTask");
        tasks.MapGet("/images/{index}", Image).WithName("TaskImage");
        tasks.MapGet("/events", Events).WithName("TaskEvents");
        tasks.MapGet("/preview", Preview).WithName("TaskPreview");
        return routes;
    }

    /// <summary>
    /// The body is A1111's, plus (as Replicate names them) <c>webhook</c> and <c>webhook_events_filter</c>, which are
    /// taken out before the body is queued: the engine never sees them.
    /// </summary>
    private static async Task<Accepted<ApiResponse<TaskAcceptedDto>>> Submit(string kind, JsonElement body, JobService svc, HttpContext http, CancellationToken ct)
    {
        var key = http.Request.Headers[IdempotencyHeader].ToString();
        var (input, webhook) = TakeWebhook(body);
        var (job, _) = await svc.SubmitAsync(await svc.CallerAgentAsync(ct), kind, input, key.Length == 0 ? null : key, null, ct, webhook);
        var at = ApiLinks.Task(job.Id);
        return TypedResults.Accepted(at, new ApiResponse<TaskAcceptedDto>(http.TraceIdentifier, true,
            new TaskAcceptedDto(job.Id, job.State, at + "/progress", at + "/result", at + "/events")));
    }

    private static (JsonElement Input, WebhookRequest? Webhook) TakeWebhook(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object || (!body.TryGetProperty("webhook", out _) && !body.TryGetProperty("webhook_events_filter", out _)))
        {
            return (body, null);
        }

        var url = body.TryGetProperty("webhook", out var u) ? u : default;
        var events = body.TryGetProperty("webhook_events_filter", out var e) ? e : default;
        if (url.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.String))
        {
            throw AtelierException.InvalidInput("webhook", "must be a URL");
        }

        if (events.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null or JsonValueKind.Array)
            || (events.ValueKind == JsonValueKind.Array && events.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String)))
        {
            throw AtelierException.InvalidInput("webhook_events_filter", "must be a list of event names");
        }

        var rest = System.Text.Json.Nodes.JsonNode.Parse(body.GetRawText())!.AsObject();
        rest.Remove("webhook");
        rest.Remove("webhook_events_filter");
        using var doc = JsonDocument.Parse(rest.ToJsonString());
        return (doc.RootElement.Clone(), new WebhookRequest(url.ValueKind == JsonValueKind.String ? url.GetString() : null,
            events.ValueKind == JsonValueKind.Array ? [.. events.EnumerateArray().Select(x => x.GetString()!)] : null, "webhook", "webhook_events_filter"));
    }

    public static async Task<Ok<ApiResponse<JobDto>>> GetTask(string taskId, JobService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.FindTaskAsync(taskId, ct));

    public static async Task<Ok<ApiResponse<JobResultDto>>> Result(string taskId, JobService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.TaskResultAsync(taskId, ct));

    public static async Task<Ok<ApiResponse<JobDto>>> Cancel(string taskId, JobService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.CancelTaskAsync(taskId, ct));

    public static async Task<IResult> Image(string taskId, int index, JobService svc, CancellationToken ct)
    {
        return Results.Stream(await svc.OpenImageAsync(null, taskId, index, ct), "image/png");
    }

    /// <summary>The running task's latest live preview (<c>image/png</c>, never cached); none yet or finished → 404.</summary>
    public static async Task<IResult> Preview(string taskId, JobService svc, HttpContext http, CancellationToken ct) =>
        PreviewReply(http, await svc.PreviewAsync(null, taskId, ct));

    /// <summary>A live preview: the PNG, never cached, with its step in <c>X-Preview-Step</c> (the jobs API answers the same).</summary>
    public static IResult PreviewReply(HttpContext http, (byte[] Png, int Step) preview)
    {
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["X-Preview-Step"] = preview.Step.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Results.Bytes(preview.Png, "image/png");
    }

    /// <summary>Server-sent events: <c>progress</c> whenever the task changes, then one <c>done</c> with its final state.</summary>
    public static async Task<IResult> Events(string taskId, JobService svc, JobWatch watch, RateLimits limits, RequestContext ctx, HttpContext http, CancellationToken ct)
    {
        var job = await svc.FindTaskAsync(taskId, ct);
        limits.HoldStream(http, ctx.Caller!.CredentialId);
        return TypedResults.ServerSentEvents(Stream(job.Id, svc, watch, ct));
    }

    private static async IAsyncEnumerable<SseItem<JobDto>> Stream(string jobId, JobService svc, JobWatch watch, [EnumeratorCancellation] CancellationToken ct)
    {
        string? last = null;
        while (!ct.IsCancellationRequested)
        {
            // Watch before looking, so a change in between ends the wait below at once. Progress (a heartbeat) is not
            // notified: it is looked at again every 250 ms.
            using var change = watch.Watch(jobId);
            var job = await svc.ReloadAsync(jobId, ct);
            var fingerprint = $"{job.State}/{job.Attempt}/{job.Progress.Step}/{job.Progress.Fraction}/{job.Progress.PreviewStep}";
            if (JobStates.IsTerminal(job.State))
            {
                yield return new SseItem<JobDto>(job, "done");
                yield break;
            }

            if (fingerprint != last)
            {
                last = fingerprint;
                yield return new SseItem<JobDto>(job, "progress");
            }

            await change.WaitAsync(TimeSpan.FromMilliseconds(250), ct);
        }
    }

    /// <summary>The error a finished, unsuccessful job answers with: its own catalog code, else inference failed.</summary>
    public static AtelierException ErrorOf(JobDto job, int retryAfterSeconds = 60)
    {
        var code = ErrorCatalog.All.FirstOrDefault(c => c.Code == job.ErrorCode) ?? ErrorCatalog.b_predict_predictfail;
        // A job fails with s_common_lockfail when the storage disk was full (WorkerService.PutImageAsync): a failure worth
        // retrying, so the answer says when, with the errCode every other full-disk answer has.
        var full = code == ErrorCatalog.s_common_lockfail;
        // A code with one placeholder (p_model_modelfiletypenotsupport's ${Type}) is filled with the worker's message,
        // which for such codes starts with that value (WorkerHost, IModelInstaller.CannotRun).
        var values = code.Placeholders.Count == 1 && job.ErrorMessage is { Length: > 0 } message
            ? new Dictionary<string, string> { [code.Placeholders[0]] = message }
            : null;
        return new AtelierException(code, values, errCode: full ? ErrCodes.DiskFull : job.State == JobStates.Failed ? job.ErrorCode : job.State,
            errMessage: job.ErrorMessage ?? job.State)
        {
            RetryAfterSeconds = full ? retryAfterSeconds : null,
        };
    }

    public static TimeSpan SyncTimeout(IOptions<JobsOptions> options) => TimeSpan.FromSeconds(options.Value.SyncTimeoutSeconds);
}
