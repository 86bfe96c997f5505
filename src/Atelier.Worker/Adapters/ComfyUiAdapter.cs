using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Atelier.Engine.Images;

namespace Atelier.Worker.Adapters;

/// <summary>
/// A client of a running ComfyUI server: the job becomes a standard text-to-image graph (CheckpointLoaderSimple,
/// CLIPTextEncode ×2, EmptyLatentImage, KSampler, VAEDecode, SaveImage), or for img2img the init image uploaded to
/// <c>/upload/image</c> and brought in by LoadImage, ImageScale (Lanczos; centre crop for A1111's crop and resize),
/// VAEEncode and RepeatLatentBatch, sampled with the denoising strength. The graph is posted to <c>/prompt</c> with our
/// own <c>prompt_id</c> and <c>client_id</c>; progress and completion come over the <c>/ws?clientId=</c> websocket; the
/// images are read through <c>/history/{id}</c> and <c>/view</c>; cancelling posts <c>/interrupt</c>. A1111's sampler
/// and schedule names are mapped to ComfyUI's; a sampler ComfyUI does not have fails the job by name.
/// </summary>
public sealed class ComfyUiAdapter(HttpClient http) : IEngineAdapter
{
    public string Name => "comfyui";

    public async Task<IReadOnlyList<EngineModel>> ListModelsAsync(CancellationToken ct)
    {
        var info = await http.GetFromJsonAsync<JsonElement>("object_info/CheckpointLoaderSimple", ct);
        var names = info.GetProperty("CheckpointLoaderSimple").GetProperty("input").GetProperty("required").GetProperty("ckpt_name")[0];
        return [.. names.EnumerateArray().Select(n => n.GetString()!).Select(f => new EngineModel(Path.GetFileNameWithoutExtension(f), f, "", null))];
    }

    public async Task<EngineResult> GenerateAsync(EngineJob job, IProgress<EngineProgress>? progress, CancellationToken ct)
    {
        // What ComfyUI's standard graph does not do, said instead of drawing something else (a workflow job can do them).
        string[] missing =
        [
            .. job.Hires is not null ? ["the hires fix (enable_hr)"] : Array.Empty<string>(),
            .. Engine.Images.SdUpscaleScript.Names(job.ScriptName) ? ["the SD upscale script"] : Array.Empty<string>(),
            .. job.RefinerCheckpoint is not null ? ["a refiner (refiner_checkpoint)"] : Array.Empty<string>(),
        ];
        if (missing.Length > 0)
        {
            throw new EngineFailedException($"the ComfyUI adapter's graph does not run {string.Join(", ", missing)}: send a ComfyUI workflow (/api/v1/predict/comfyui), or use a built-in or A1111 worker");
        }

        var samplerName = ComfySampler(job.Sampler)
                          ?? throw new EngineFailedException($"ComfyUI has no sampler like {job.Sampler} (it has {string.Join(", ", Samplers.Keys)})");
        var models = await ListModelsAsync(ct);
        var model = models.FirstOrDefault(m => string.Equals(m.Title, job.Model, StringComparison.OrdinalIgnoreCase)
                                               || string.Equals(m.Name, job.Model, StringComparison.OrdinalIgnoreCase))
                    ?? throw new EngineFailedException($"checkpoint '{job.Model}' is not on the ComfyUI server");
        var promptId = job.JobId;
        var seed = job.Seed == -1 ? Random.Shared.NextInt64(0, uint.MaxValue) : job.Seed;
        // Inpainting: the picture-space half done here as A1111 does it (mask read, blurred, "only masked" cut-out, fill),
        // ComfyUI given the job-size picture and mask (SetLatentNoiseMask), its pictures put back over the original.
        var plan = job is { InitImagePng: { } initPicture, MaskPng: { } maskPicture } ? PlanInpaint(job, initPicture, maskPicture) : null;
        var initBytes = plan is null ? job.InitImagePng : Png.Encode(plan.InitRgb, job.Width, job.Height);
        var init = initBytes is not null ? await UploadAsync(initBytes, promptId, ct) : null;
        var maskName = plan is null ? null : await UploadAsync(Png.Encode([.. plan.ImageMask.SelectMany(v => new[] { v, v, v })], job.Width, job.Height), promptId + "-mask", ct);
        var pictures = await RunPromptAsync(Graph(job, model.Title, seed, init, samplerName, maskName), promptId, progress, ct);
        var images = plan is null ? pictures : [.. pictures.Select(p => PutBack(plan, p, job))];
        return new EngineResult(images, [.. Enumerable.Range(0, images.Count).Select(i => seed + i)], "", []);
    }

    /// <summary>The most pictures one workflow job brings back (the server's images per job).</summary>
    public const int MaxWorkflowPictures = 16;

    /// <summary>
    /// A whole ComfyUI workflow as a job (<c>{workflow, images}</c>, the workflow in API format): each picture uploaded,
    /// every node input naming one of them pointed at its uploaded name, the workflow queued as it is, and every picture
    /// of its outputs collected from the history.
    /// </summary>
    public async Task<EngineResult> RunWorkflowAsync(JsonElement request, string jobId, IProgress<EngineProgress>? progress, CancellationToken ct)
    {
        if (!request.TryGetProperty("workflow", out var given) || given.ValueKind != JsonValueKind.Object)
        {
            throw new EngineFailedException("the job has no workflow");
        }

        var workflow = JsonNode.Parse(given.GetRawText())!.AsObject();
        var uploaded = new Dictionary<string, string>(StringComparer.Ordinal);
        if (request.TryGetProperty("images", out var images) && images.ValueKind == JsonValueKind.Object)
        {
            var index = 0;
            foreach (var image in images.EnumerateObject())
            {
                var bytes = image.Value.ValueKind == JsonValueKind.String ? Base64Image.Decode(image.Value.GetString()!) : null;
                uploaded[image.Name] = await UploadAsync(bytes ?? throw new EngineFailedException($"images.{image.Name} is not base64"), $"{jobId}-{index++}", ct);
            }
        }

        foreach (var (_, node) in workflow)
        {
            if (node?["inputs"] is not JsonObject inputs)
            {
                continue;
            }

            var type = node["class_type"]?.GetValue<string>() ?? "";
            foreach (var (key, value) in inputs.ToList())
            {
                var text = value is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
                if (text is not null && uploaded.TryGetValue(text, out var stored))
                {
                    inputs[key] = stored;
                }
                else if (type.StartsWith("LoadImage", StringComparison.Ordinal) && key is "image" or "mask")
                {
                    // The server checks this when the job is queued; a worker never lets a loader read another file.
                    throw new EngineFailedException($"the workflow's {type} reads '{text}', which is not one of the job's pictures");
                }
            }

            // The job's own name for what it saves, so its files on the ComfyUI server are its own.
            if (type == "SaveImage")
            {
                inputs["filename_prefix"] = $"atelier-{jobId}";
            }
        }

        var pictures = await RunPromptAsync(workflow, jobId, progress, ct);
        // At most a job's worth of pictures come back, whatever the graph makes.
        pictures = [.. pictures.Take(MaxWorkflowPictures)];
        return new EngineResult(pictures, [.. pictures.Select(_ => 0L)], "", []);
    }

    /// <summary>Queues a graph under <paramref name="promptId"/>, follows it on the websocket (progress; interrupt on cancel) and fetches its output pictures.</summary>
    private async Task<List<byte[]>> RunPromptAsync(JsonObject graph, string promptId, IProgress<EngineProgress>? progress, CancellationToken ct)
    {
        var clientId = Guid.NewGuid().ToString("N");
        using var socket = new ClientWebSocket();
        var wsUri = new UriBuilder(new Uri(http.BaseAddress!, $"ws?clientId={clientId}")) { Scheme = http.BaseAddress!.Scheme == "https" ? "wss" : "ws" }.Uri;
        await socket.ConnectAsync(wsUri, ct);
        var body = new JsonObject { ["prompt"] = graph, ["client_id"] = clientId, ["prompt_id"] = promptId };
        using (var posted = await http.PostAsJsonAsync("prompt", body, ct))
        {
            if (!posted.IsSuccessStatusCode)
            {
                throw new EngineFailedException($"ComfyUI refused the prompt ({(int)posted.StatusCode}): {await posted.Content.ReadAsStringAsync(ct)}");
            }
        }

        using (ct.Register(() => _ = http.PostAsync("interrupt", null, CancellationToken.None)))
        {
            try
            {
                await WaitForCompletionAsync(socket, promptId, progress, ct);
            }
            catch (WebSocketException) when (ct.IsCancellationRequested)
            {
                // Cancelling a receive aborts the socket; the job was cancelled, the socket error is a consequence.
                throw new OperationCanceledException(ct);
            }
        }

        ct.ThrowIfCancellationRequested();
        var history = await http.GetFromJsonAsync<JsonElement>($"history/{promptId}", ct);
        var pictures = new List<byte[]>();
        foreach (var output in history.GetProperty(promptId).GetProperty("outputs").EnumerateObject())
        {
            if (!output.Value.TryGetProperty("images", out var list))
            {
                continue;
            }

            foreach (var image in list.EnumerateArray())
            {
                var query = $"view?filename={Uri.EscapeDataString(image.GetProperty("filename").GetString()!)}" +
                            $"&subfolder={Uri.EscapeDataString(image.GetProperty("subfolder").GetString() ?? "")}" +
                            $"&type={Uri.EscapeDataString(image.GetProperty("type").GetString() ?? "output")}";
                pictures.Add(await http.GetByteArrayAsync(query, ct));
            }
        }

        return pictures;
    }

    private static async Task WaitForCompletionAsync(ClientWebSocket socket, string promptId, IProgress<EngineProgress>? progress, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            using var message = new MemoryStream();
            WebSocketReceiveResult received;
            do
            {
                received = await socket.ReceiveAsync(buffer, ct);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    throw new EngineFailedException("ComfyUI closed the websocket before the prompt finished");
                }

                message.Write(buffer, 0, received.Count);
            }
            while (!received.EndOfMessage);

            if (received.MessageType != WebSocketMessageType.Text)
            {
                continue; // binary preview frames
            }

            using var doc = JsonDocument.Parse(message.ToArray());
            var type = doc.RootElement.GetProperty("type").GetString();
            var data = doc.RootElement.TryGetProperty("data", out var d) ? d : default;
            var forUs = data.ValueKind == JsonValueKind.Object && data.TryGetProperty("prompt_id", out var pid) && pid.GetString() == promptId;
            switch (type)
            {
                case "progress" when forUs:
                    var value = data.GetProperty("value").GetInt32();
                    var max = data.GetProperty("max").GetInt32();
                    progress?.Report(new EngineProgress(value, max, max == 0 ? 0 : (double)value / max));
                    break;
                case "executing" when forUs && data.GetProperty("node").ValueKind == JsonValueKind.Null:
                    return;
                case "execution_error" when forUs:
                    throw new EngineFailedException(data.TryGetProperty("exception_message", out var m) ? m.GetString() ?? "execution error" : "execution error");
                case "execution_interrupted" when forUs:
                    throw new OperationCanceledException("ComfyUI interrupted the prompt");
            }
        }
    }

    /// <summary>ComfyUI's <c>/upload/image</c> (a multipart <c>image</c> file): answers the name to give LoadImage.</summary>
    private async Task<string> UploadAsync(byte[] image, string promptId, CancellationToken ct)
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(image);
        var (type, extension) = image.Length > 3 && image[0] == 0xFF && image[1] == 0xD8 ? ("image/jpeg", "jpg")
            : image.Length > 12 && image.AsSpan(8, 4).SequenceEqual("WEBP"u8) ? ("image/webp", "webp") : ("image/png", "png");
        file.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(type);
        form.Add(file, "image", $"atelier-{promptId}.{extension}");
        form.Add(new StringContent("true"), "overwrite");
        using var response = await http.PostAsync("upload/image", form, ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new EngineFailedException($"ComfyUI refused the init image ({(int)response.StatusCode}): {await response.Content.ReadAsStringAsync(ct)}");
        }

        var uploaded = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
        var name = uploaded.GetProperty("name").GetString()!;
        var subfolder = uploaded.TryGetProperty("subfolder", out var sub) ? sub.GetString() : null;
        return string.IsNullOrEmpty(subfolder) ? name : $"{subfolder}/{name}";
    }

    private static InpaintPlan? PlanInpaint(EngineJob job, byte[] image, byte[] mask)
    {
        try
        {
            return Inpainting.Prepare(image, mask, job.Inpaint, job.Width, job.Height, job.ResizeMode);
        }
        catch (InvalidDataException e)
        {
            throw new EngineFailedException(e.Message, e);
        }
        catch (Engine.Pipeline.EngineRequestException e)
        {
            throw new EngineFailedException(e.Message, e);
        }
    }

    /// <summary>One of ComfyUI's pictures (the job's size) laid back over the original as the inpainting plan says.</summary>
    private static byte[] PutBack(InpaintPlan plan, byte[] png, EngineJob job)
    {
        var (rgb, w, h) = ImageDecoder.DecodeOriginal(png);
        if ((w, h) != (job.Width, job.Height))
        {
            throw new EngineFailedException($"ComfyUI answered a {w}×{h} picture for a {job.Width}×{job.Height} inpainting job");
        }

        return Png.Encode(plan.Composite(rgb, w, h), plan.OutputWidth, plan.OutputHeight);
    }

    /// <summary>
    /// The standard text-to-image graph in ComfyUI's API format; with <paramref name="initImage"/> (an uploaded name) the
    /// img2img one: LoadImage → ImageScale → VAEEncode (→ RepeatLatentBatch) into the KSampler, at the job's denoising strength.
    /// </summary>
    /// <remarks>
    /// With <paramref name="mask"/> (an uploaded job-size picture, white where generated) the latents get ComfyUI's
    /// noise mask: LoadImage → ImageToMask (red) → SetLatentNoiseMask, so only the masked latents change.
    /// </remarks>
    public static JsonObject Graph(EngineJob job, string checkpoint, long seed, string? initImage = null, string? samplerName = null, string? mask = null)
    {
        var graph = new JsonObject
        {
            ["4"] = Node("CheckpointLoaderSimple", new JsonObject { ["ckpt_name"] = checkpoint }),
            ["6"] = Node("CLIPTextEncode", new JsonObject { ["text"] = job.Prompt, ["clip"] = Link("4", 1) }),
            ["7"] = Node("CLIPTextEncode", new JsonObject { ["text"] = job.NegativePrompt, ["clip"] = Link("4", 1) }),
        };
        JsonArray latent;
        if (initImage is null)
        {
            graph["5"] = Node("EmptyLatentImage", new JsonObject { ["width"] = job.Width, ["height"] = job.Height, ["batch_size"] = job.BatchSize });
            latent = Link("5", 0);
        }
        else
        {
            graph["10"] = Node("LoadImage", new JsonObject { ["image"] = initImage });
            graph["11"] = Node("ImageScale", new JsonObject
            {
                ["image"] = Link("10", 0), ["upscale_method"] = "lanczos", ["width"] = job.Width, ["height"] = job.Height,
                ["crop"] = job.ResizeMode == 1 && mask is null ? "center" : "disabled",
            });
            graph["12"] = Node("VAEEncode", new JsonObject { ["pixels"] = Link("11", 0), ["vae"] = Link("4", 2) });
            latent = Link("12", 0);
            if (job.BatchSize > 1)
            {
                graph["13"] = Node("RepeatLatentBatch", new JsonObject { ["samples"] = Link("12", 0), ["amount"] = job.BatchSize });
                latent = Link("13", 0);
            }

            if (mask is not null)
            {
                graph["14"] = Node("LoadImage", new JsonObject { ["image"] = mask });
                graph["15"] = Node("ImageToMask", new JsonObject { ["image"] = Link("14", 0), ["channel"] = "red" });
                graph["16"] = Node("SetLatentNoiseMask", new JsonObject { ["samples"] = latent, ["mask"] = Link("15", 0) });
                latent = Link("16", 0);
            }
        }

        graph["3"] = Node("KSampler", new JsonObject
        {
            ["seed"] = seed, ["steps"] = job.Steps, ["cfg"] = job.CfgScale, ["sampler_name"] = samplerName ?? ComfySampler(job.Sampler) ?? "euler",
            ["scheduler"] = ComfyScheduler(job.Sampler, job.Schedule), ["denoise"] = initImage is null ? 1.0 : job.DenoisingStrength,
            ["model"] = Link("4", 0), ["positive"] = Link("6", 0), ["negative"] = Link("7", 0), ["latent_image"] = latent,
        });
        graph["8"] = Node("VAEDecode", new JsonObject { ["samples"] = Link("3", 0), ["vae"] = Link("4", 2) });
        graph["9"] = Node("SaveImage", new JsonObject { ["filename_prefix"] = "atelier", ["images"] = Link("8", 0) });
        return graph;
    }

    /// <summary>A1111's sampler names and ComfyUI's for the same k-diffusion sampler.</summary>
    public static readonly IReadOnlyDictionary<string, string> Samplers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["Euler"] = "euler", ["Euler a"] = "euler_ancestral", ["Heun"] = "heun", ["DPM2"] = "dpm_2", ["DPM2 a"] = "dpm_2_ancestral", ["LMS"] = "lms",
        ["DPM fast"] = "dpm_fast", ["DPM adaptive"] = "dpm_adaptive", ["DPM++ 2S a"] = "dpmpp_2s_ancestral", ["DPM++ SDE"] = "dpmpp_sde",
        ["DPM++ 2M"] = "dpmpp_2m", ["DPM++ 2M SDE"] = "dpmpp_2m_sde", ["DPM++ 3M SDE"] = "dpmpp_3m_sde", ["LCM"] = "lcm", ["DDIM"] = "ddim",
        ["UniPC"] = "uni_pc",
    };

    /// <summary>ComfyUI's name for an A1111 sampler (legacy names such as "DPM++ 2M Karras" too); null when ComfyUI has none.</summary>
    public static string? ComfySampler(string a1111)
    {
        var (name, _) = Engine.Sampling.Sampler.SplitLegacy(a1111);
        return Samplers.TryGetValue(name, out var comfy) ? comfy : null;
    }

    /// <summary>
    /// ComfyUI's scheduler for an A1111 sampler and schedule: a legacy name's schedule ("DPM++ 2M Karras") first, then
    /// the schedule, with "Automatic" as A1111 resolves it for that sampler; ComfyUI's normal where it has no such one.
    /// </summary>
    public static string ComfyScheduler(string sampler, string schedule)
    {
        var (name, legacy) = Engine.Sampling.Sampler.SplitLegacy(sampler);
        var canonical = Engine.Sampling.Schedules.Canonical(legacy ?? schedule) ?? schedule;
        if (canonical == "Automatic")
        {
            canonical = Engine.Sampling.Sampler.Find(name)?.DefaultSchedule ?? "Normal";
        }

        return ComfySchedulerOf(canonical);
    }

    private static string ComfySchedulerOf(string a1111) => a1111 switch
    {
        "Karras" => "karras",
        "Exponential" => "exponential",
        "SGM Uniform" => "sgm_uniform",
        "Simple" => "simple",
        "DDIM" => "ddim_uniform",
        "Beta" => "beta",
        "KL Optimal" => "kl_optimal",
        _ => "normal",
    };

    private static JsonObject Node(string type, JsonObject inputs) => new() { ["class_type"] = type, ["inputs"] = inputs };

    private static JsonArray Link(string node, int output) => [node, output];

    public void Dispose() => http.Dispose();
}
