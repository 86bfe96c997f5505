using System.CommandLine;
using System.Net.ServerSentEvents;
using System.Text.Json;
using Atelier.Client;

namespace Atelier.Commands;

/// <summary>
/// <c>atelier generate</c>: submits a txt2img task (<c>POST /api/v1/predict/txt2img</c>), follows its event stream with a
/// progress bar, and writes the first image.
/// </summary>
internal sealed class GenerateCommand : Command
{
    private static readonly string[] Finished = ["succeeded", "failed", "canceled", "aborted"];

    public GenerateCommand()
        : base("generate", "Generate an image from a prompt and write it as PNG (any token of the tenant)")
    {
        var options = new ClientOptions();
        var prompt = new Argument<string>("prompt") { Description = "What to draw" };
        var output = new Option<FileInfo>("--output", "-o") { Description = "The PNG file to write", HelpName = "FILE", Required = true };
        var model = new Option<string>("--model") { Description = "The checkpoint: a model name, title or hash prefix [default: the token's checkpoint, else the tenant's]", HelpName = "MODEL" };
        var steps = new Option<int?>("--steps") { Description = "Sampling steps (1-150)", HelpName = "N" };
        var seed = new Option<long?>("--seed") { Description = "The seed (the same seed and settings draw the same image) [default: random]", HelpName = "N" };
        var width = new Option<int?>("--width") { Description = "Width in pixels (64-2048, a multiple of 8)", HelpName = "PX" };
        var height = new Option<int?>("--height") { Description = "Height in pixels (64-2048, a multiple of 8)", HelpName = "PX" };
        var negative = new Option<string>("--negative") { Description = "The negative prompt: what not to draw", HelpName = "TEXT" };
        ClientVerb.Configure(this, options, async (parse, api, console, ct) =>
        {
            var body = new Dictionary<string, object?> { ["prompt"] = parse.GetValue(prompt) };
            Add(body, "negative_prompt", parse.GetValue(negative));
            Add(body, "steps", parse.GetValue(steps));
            Add(body, "seed", parse.GetValue(seed));
            Add(body, "width", parse.GetValue(width));
            Add(body, "height", parse.GetValue(height));
            if (parse.GetValue(model) is { } m)
            {
                body["override_settings"] = new Dictionary<string, string> { ["sd_model_checkpoint"] = m };
            }

            var accepted = await api.PostAsync("api/v1/predict/txt2img", body, ct);
            var taskId = accepted.GetProperty("taskId").GetString()!;
            console.Note($"Task {taskId} queued.");
            var job = await console.ProgressAsync("queued", 100, bar => FollowAsync(api, accepted.GetProperty("eventsUrl").GetString()!, taskId, bar, ct));
            var state = Output.Cell(job, "state");
            if (state != "succeeded")
            {
                throw new ClientException(ExitCodes.Failed, $"Task {taskId} {state}: {Output.Cell(job, "errorCode")} {Output.Cell(job, "errorMessage")}".TrimEnd());
            }

            var result = await api.GetAsync($"api/v1/tasks/{Uri.EscapeDataString(taskId)}/result", ct);
            var file = parse.GetValue(output)!;
            using (var request = new HttpRequestMessage(HttpMethod.Get, $"api/v1/tasks/{Uri.EscapeDataString(taskId)}/images/0"))
            using (var response = await api.SendRawAsync(request, HttpCompletionOption.ResponseHeadersRead, ct))
            {
                await AtelierApi.ThrowIfFailedAsync(response, ct);
                if (file.Directory is { Exists: false } folder)
                {
                    folder.Create();
                }

                await using var png = new FileStream(file.FullName, FileMode.Create, FileAccess.Write, FileShare.None);
                await response.Content.CopyToAsync(png, ct);
            }

            var image = result.GetProperty("images")[0];
            console.Print(result, r => Output.ListTable(Output.Items(r.GetProperty("images")), [("index", "index"), ("seed", "seed"), ("sha256", "sha256"), ("bytes", "size")]));
            if (!console.Json)
            {
                Console.WriteLine($"Wrote {file.FullName} (task {taskId}, seed {Output.Cell(image, "seed")}).");
            }

            return ExitCodes.Ok;
        }, prompt, output, model, steps, seed, width, height, negative);
    }

    private static void Add<T>(Dictionary<string, object?> body, string name, T? value)
    {
        if (value is not null)
        {
            body[name] = value;
        }
    }

    /// <summary>Reads the task's events until <c>done</c>, moving the bar; returns the job as it ended.</summary>
    private static async Task<JsonElement> FollowAsync(AtelierApi api, string eventsUrl, string taskId, Output.IProgressBar bar, CancellationToken ct)
    {
        using (var request = new HttpRequestMessage(HttpMethod.Get, eventsUrl.TrimStart('/')))
        {
            request.Headers.Accept.ParseAdd("text/event-stream");
            using var response = await api.SendRawAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            await AtelierApi.ThrowIfFailedAsync(response, ct);
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            await foreach (var item in SseParser.Create(stream).EnumerateAsync(ct))
            {
                var job = JsonDocument.Parse(item.Data).RootElement;
                Show(job, bar);
                if (item.EventType == "done")
                {
                    return job;
                }
            }
        }

        // The stream ended without its last event (a server restart, a proxy's timeout): ask once.
        var now = await api.GetAsync($"api/v1/tasks/{Uri.EscapeDataString(taskId)}", ct);
        return Finished.Contains(Output.Cell(now, "state"))
            ? now
            : throw new ClientException(ExitCodes.Network, $"The event stream of task {taskId} ended before the task did; follow it with 'atelier jobs show {taskId}'.");
    }

    private static void Show(JsonElement job, Output.IProgressBar bar)
    {
        var state = Output.Cell(job, "state");
        if (!job.TryGetProperty("progress", out var progress) || progress.ValueKind != JsonValueKind.Object)
        {
            bar.Report(0, description: state);
            return;
        }

        if (Output.Cell(progress, "stage") == "downloading" && progress.TryGetProperty("bytesTotal", out var total) && total.ValueKind == JsonValueKind.Number)
        {
            var done = progress.TryGetProperty("bytesDone", out var d) && d.ValueKind == JsonValueKind.Number ? d.GetDouble() : 0;
            bar.Report(100 * done / Math.Max(1, total.GetDouble()), description: "downloading the model");
            return;
        }

        var fraction = progress.TryGetProperty("fraction", out var f) && f.ValueKind == JsonValueKind.Number ? f.GetDouble() : 0;
        var description = state == "running" ? $"generating {Output.Cell(progress, "step")}/{Output.Cell(progress, "steps")}" : state;
        bar.Report(state == "succeeded" ? 100 : 100 * fraction, description: description);
    }
}
