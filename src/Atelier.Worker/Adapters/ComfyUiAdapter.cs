using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Atelier.Worker.Adapters;

/// <summary>
/// A client of a running ComfyUI server: the job becomes a standard text-to-image graph (CheckpointLoaderSimple,
/// CLIPTextEncode ×2, EmptyLatentImage, KSampler, VAEDecode, SaveImage) posted to <c>/prompt</c> with our own
/// <c>prompt_id</c> and <c>client_id</c>; progress and completion come over the <c>/ws?clientId=</c> websocket; the
/// images are read through <c>/history/{id}</c> and <c>/view</c>; cancelling posts <c>/interrupt</c>.
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
        if (job.InitImagePng is not null)
        {
            throw new EngineFailedException("img2img through ComfyUI is not supported by this adapter yet");
        }

        var models = await ListModelsAsync(ct);
        var model = models.FirstOrDefault(m => string.Equals(m.Title, job.Model, StringComparison.OrdinalIgnoreCase)
                                               || string.Equals(m.Name, job.Model, StringComparison.OrdinalIgnoreCase))
                    ?? throw new EngineFailedException($"checkpoint '{job.Model}' is not on the ComfyUI server");
        var clientId = Guid.NewGuid().ToString("N");
        var promptId = job.JobId;
        var seed = job.Seed == -1 ? Random.Shared.NextInt64(0, uint.MaxValue) : job.Seed;
        using var socket = new ClientWebSocket();
        var wsUri = new UriBuilder(new Uri(http.BaseAddress!, $"ws?clientId={clientId}")) { Scheme = http.BaseAddress!.Scheme == "https" ? "wss" : "ws" }.Uri;
        await socket.ConnectAsync(wsUri, ct);
        var body = new JsonObject { ["prompt"] = Graph(job, model.Title, seed), ["client_id"] = clientId, ["prompt_id"] = promptId };
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
        var images = new List<byte[]>();
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
                images.Add(await http.GetByteArrayAsync(query, ct));
            }
        }

        return new EngineResult(images, [.. Enumerable.Range(0, images.Count).Select(i => seed + i)], "", []);
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

    /// <summary>The standard text-to-image graph in ComfyUI's API format.</summary>
    public static JsonObject Graph(EngineJob job, string checkpoint, long seed) => new()
    {
        ["4"] = Node("CheckpointLoaderSimple", new JsonObject { ["ckpt_name"] = checkpoint }),
        ["6"] = Node("CLIPTextEncode", new JsonObject { ["text"] = job.Prompt, ["clip"] = Link("4", 1) }),
        ["7"] = Node("CLIPTextEncode", new JsonObject { ["text"] = job.NegativePrompt, ["clip"] = Link("4", 1) }),
        ["5"] = Node("EmptyLatentImage", new JsonObject { ["width"] = job.Width, ["height"] = job.Height, ["batch_size"] = job.BatchSize }),
        ["3"] = Node("KSampler", new JsonObject
        {
            ["seed"] = seed, ["steps"] = job.Steps, ["cfg"] = job.CfgScale, ["sampler_name"] = SamplerName(job.Sampler),
            ["scheduler"] = job.Schedule == "Karras" ? "karras" : "normal", ["denoise"] = 1.0,
            ["model"] = Link("4", 0), ["positive"] = Link("6", 0), ["negative"] = Link("7", 0), ["latent_image"] = Link("5", 0),
        }),
        ["8"] = Node("VAEDecode", new JsonObject { ["samples"] = Link("3", 0), ["vae"] = Link("4", 2) }),
        ["9"] = Node("SaveImage", new JsonObject { ["filename_prefix"] = "atelier", ["images"] = Link("8", 0) }),
    };

    public static string SamplerName(string a1111) => a1111 switch
    {
        "Euler a" => "euler_ancestral",
        "DPM++ 2M" => "dpmpp_2m",
        "LMS" => "lms",
        "DDIM" => "ddim",
        _ => "euler",
    };

    private static JsonObject Node(string type, JsonObject inputs) => new() { ["class_type"] = type, ["inputs"] = inputs };

    private static JsonArray Link(string node, int output) => [node, output];

    public void Dispose() => http.Dispose();
}
