using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Atelier.Worker.Adapters;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Atelier.Worker.Tests;

/// <summary>
/// A protocol-faithful ComfyUI stand-in on loopback, backed by the built-in engine. It covers what the adapter uses:
/// <c>GET /object_info/CheckpointLoaderSimple</c> (the checkpoint list), <c>POST /prompt</c> (API-format graph with
/// <c>client_id</c> and our <c>prompt_id</c>; the graph is checked for the node types and links a text-to-image workflow
/// needs, and refused with 400 and ComfyUI's error shape otherwise), the <c>/ws?clientId=</c> websocket (<c>status</c>,
/// <c>execution_start</c>, <c>executing</c> per node, <c>progress</c> per step, <c>executing</c> with node null at the end,
/// <c>execution_error</c>, <c>execution_interrupted</c>), <c>GET /history/{id}</c> (outputs of SaveImage),
/// <c>GET /view</c> (the PNG bytes), <c>POST /interrupt</c>, and <c>POST /upload/image</c> (a multipart <c>image</c> file,
/// answering <c>{name, subfolder, type}</c>) with the img2img nodes LoadImage (refused with 400 for a file never
/// uploaded), ImageScale, VAEEncode and RepeatLatentBatch. Not covered: the queue endpoints, previews.
/// </summary>
public sealed class ComfyStandIn : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, WebSocket> _sockets = new();
    private readonly ConcurrentDictionary<string, JsonObject> _history = new();
    private readonly ConcurrentDictionary<string, byte[]> _files = new();
    private readonly ConcurrentDictionary<string, byte[]> _inputs = new();
    private CancellationTokenSource? _running;
    private Task? _execution;

    private ComfyStandIn(WebApplication app) => _app = app;

    public Uri BaseAddress { get; private set; } = null!;
    public JsonNode? LastGraph { get; private set; }

    /// <summary>The files uploaded to <c>/upload/image</c>, by name.</summary>
    public IReadOnlyDictionary<string, byte[]> Inputs => _inputs;

    public static async Task<ComfyStandIn> StartAsync(BuiltinAdapter engine, string checkpointFile)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var self = new ComfyStandIn(app);
        app.UseWebSockets();
        app.MapGet("/object_info/CheckpointLoaderSimple", () => Results.Json(new JsonObject
        {
            ["CheckpointLoaderSimple"] = new JsonObject { ["input"] = new JsonObject { ["required"] = new JsonObject { ["ckpt_name"] = new JsonArray(new JsonArray(checkpointFile)) } } },
        }));
        app.Map("/ws", async (HttpContext http) =>
        {
            if (!http.WebSockets.IsWebSocketRequest)
            {
                http.Response.StatusCode = 400;
                return;
            }

            var clientId = http.Request.Query["clientId"].ToString();
            using var socket = await http.WebSockets.AcceptWebSocketAsync();
            self._sockets[clientId] = socket;
            await self.Send(clientId, "status", new JsonObject { ["status"] = new JsonObject { ["exec_info"] = new JsonObject { ["queue_remaining"] = 0 } } });
            var buffer = new byte[1024];
            while (socket.State == WebSocketState.Open)
            {
                var r = await socket.ReceiveAsync(buffer, http.RequestAborted);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
            }
        });
        app.MapPost("/upload/image", async (HttpRequest request) =>
        {
            var form = await request.ReadFormAsync();
            if (form.Files.GetFile("image") is not { } file)
            {
                return Results.StatusCode(400);
            }

            using var bytes = new MemoryStream();
            await file.CopyToAsync(bytes);
            self._inputs[file.FileName] = bytes.ToArray();
            return Results.Json(new { name = file.FileName, subfolder = "", type = "input" });
        }).DisableAntiforgery();
        app.MapPost("/prompt", async (JsonObject body) =>
        {
            var graph = body["prompt"] as JsonObject;
            var clientId = body["client_id"]?.GetValue<string>() ?? "";
            var promptId = body["prompt_id"]?.GetValue<string>() ?? Guid.NewGuid().ToString();
            self.LastGraph = graph?.DeepClone();
            var sampler = graph?.Select(n => n.Value).FirstOrDefault(n => n?["class_type"]?.GetValue<string>() == "KSampler")?["inputs"];
            var ckpt = graph?.Select(n => n.Value).FirstOrDefault(n => n?["class_type"]?.GetValue<string>() == "CheckpointLoaderSimple")?["inputs"]?["ckpt_name"]?.GetValue<string>();
            var load = graph?.Select(n => n.Value).Where(n => n?["class_type"]?.GetValue<string>() == "LoadImage").Select(n => n!["inputs"]?["image"]?.GetValue<string>())
                .FirstOrDefault(name => name is null || !self._inputs.ContainsKey(name));
            if (load is not null)
            {
                return Results.Json(new { error = new { type = "prompt_outputs_failed_validation", message = $"Invalid image file: {load}" } }, statusCode: 400);
            }

            if (sampler is null || ckpt is null || !graph!.Any(n => n.Value?["class_type"]?.GetValue<string>() == "SaveImage"))
            {
                return Results.Json(new { error = new { type = "prompt_outputs_failed_validation", message = "Prompt outputs failed validation" } }, statusCode: 400);
            }

            var cts = self._running = new CancellationTokenSource();
            self._execution = Task.Run(() => self.Execute(engine, clientId, promptId, graph!, sampler, ckpt, cts.Token));
            return Results.Json(new { prompt_id = promptId, number = 0, node_errors = new { } });
        });
        app.MapGet("/history/{id}", (string id) => self._history.TryGetValue(id, out var h) ? Results.Json(new JsonObject { [id] = h.DeepClone() }) : Results.Json(new { }));
        app.MapGet("/view", (string filename) => self._files.TryGetValue(filename, out var b) ? Results.Bytes(b, "image/png") : Results.NotFound());
        app.MapPost("/interrupt", () =>
        {
            self._running?.Cancel();
            return Results.Ok();
        });
        await app.StartAsync();
        self.BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/");
        return self;
    }

    private async Task Execute(BuiltinAdapter engine, string clientId, string promptId, JsonObject graph, JsonNode sampler, string ckpt, CancellationToken ct)
    {
        await Send(clientId, "execution_start", new JsonObject { ["prompt_id"] = promptId });
        foreach (var node in graph)
        {
            await Send(clientId, "executing", new JsonObject { ["node"] = node.Key, ["prompt_id"] = promptId });
        }

        JsonNode? Of(string type) => graph.Select(n => n.Value).FirstOrDefault(n => n?["class_type"]?.GetValue<string>() == type)?["inputs"];
        string Text(string input) => graph[sampler[input]![0]!.GetValue<string>()]!["inputs"]!["text"]!.GetValue<string>();
        // txt2img: the empty latent's size and batch; img2img: the uploaded picture, scaled by ImageScale, repeated by RepeatLatentBatch.
        var size = Of("EmptyLatentImage") ?? Of("ImageScale")!;
        var batch = Of("EmptyLatentImage")?["batch_size"]?.GetValue<int>() ?? Of("RepeatLatentBatch")?["amount"]?.GetValue<int>() ?? 1;
        var comfySampler = sampler["sampler_name"]!.GetValue<string>();
        var job = new EngineJob
        {
            Prompt = Text("positive"), NegativePrompt = Text("negative"),
            Sampler = ComfyUiAdapter.Samplers.First(p => p.Value == comfySampler).Key,
            Schedule = sampler["scheduler"]!.GetValue<string>() switch
            {
                "karras" => "Karras", "exponential" => "Exponential", "sgm_uniform" => "SGM Uniform", "simple" => "Simple", "ddim_uniform" => "DDIM",
                "beta" => "Beta", "kl_optimal" => "KL Optimal", _ => "Normal",
            },
            Model = Path.GetFileNameWithoutExtension(ckpt), Seed = sampler["seed"]!.GetValue<long>(), Steps = sampler["steps"]!.GetValue<int>(),
            CfgScale = sampler["cfg"]!.GetValue<double>(), Width = size["width"]!.GetValue<int>(), Height = size["height"]!.GetValue<int>(),
            BatchSize = batch,
            InitImagePng = Of("LoadImage")?["image"]?.GetValue<string>() is { } uploaded ? _inputs[uploaded] : null,
            DenoisingStrength = sampler["denoise"]!.GetValue<double>(),
            ResizeMode = Of("ImageScale")?["crop"]?.GetValue<string>() == "center" ? 1 : 0,
            // SetLatentNoiseMask over ImageToMask of an uploaded picture: only the white of the picture's red is generated.
            MaskPng = Of("SetLatentNoiseMask") is { } noiseMask && graph[noiseMask["mask"]![0]!.GetValue<string>()]?["inputs"] is { } toMask
                      && toMask["channel"]?.GetValue<string>() == "red"
                ? _inputs[graph[toMask["image"]![0]!.GetValue<string>()]!["inputs"]!["image"]!.GetValue<string>()] : null,
            Inpaint = new() { FullRes = false, BlurX = 0, BlurY = 0, Fill = Engine.Images.InpaintSettings.FillOriginal },
        };
        try
        {
            var result = await engine.GenerateAsync(job, new SyncProgress(p => Send(clientId, "progress", new JsonObject
            {
                ["value"] = p.Step, ["max"] = p.Steps, ["prompt_id"] = promptId, ["node"] = "3",
            }).GetAwaiter().GetResult()), ct);
            var images = new JsonArray();
            for (var i = 0; i < result.Images.Count; i++)
            {
                var name = $"atelier_{promptId}_{i:D5}_.png";
                _files[name] = result.Images[i];
                images.Add(new JsonObject { ["filename"] = name, ["subfolder"] = "", ["type"] = "output" });
            }

            _history[promptId] = new JsonObject { ["outputs"] = new JsonObject { ["9"] = new JsonObject { ["images"] = images } }, ["status"] = new JsonObject { ["completed"] = true } };
            await Send(clientId, "executing", new JsonObject { ["node"] = null, ["prompt_id"] = promptId });
        }
        catch (OperationCanceledException)
        {
            await Send(clientId, "execution_interrupted", new JsonObject { ["prompt_id"] = promptId, ["node_id"] = "3" });
        }
        catch (EngineFailedException e)
        {
            await Send(clientId, "execution_error", new JsonObject { ["prompt_id"] = promptId, ["exception_message"] = e.Message });
        }
    }

    private async Task Send(string clientId, string type, JsonObject data)
    {
        if (_sockets.TryGetValue(clientId, out var socket) && socket.State == WebSocketState.Open)
        {
            var text = new JsonObject { ["type"] = type, ["data"] = data }.ToJsonString();
            try
            {
                await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
            }
            catch (WebSocketException)
            {
                // The client went away between the state check and the send (it cancelled): as ComfyUI, carry on without it.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        // The prompt may still run after the client stopped waiting: end it before the engine under it goes away.
        _running?.Cancel();
        if (_execution is not null)
        {
            await _execution;
        }

        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class SyncProgress(Action<EngineProgress> report) : IProgress<EngineProgress>
    {
        public void Report(EngineProgress value) => report(value);
    }
}
