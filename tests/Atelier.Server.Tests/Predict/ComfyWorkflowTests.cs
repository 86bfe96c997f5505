using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Server.Tests.Infrastructure;
using Atelier.Worker.Adapters;
using Atelier.Worker.Tests;

namespace Atelier.Server.Tests.Predict;

/// <summary>
/// A whole ComfyUI workflow as a job (<c>POST /api/v1/predict/comfyui</c>): checked before queueing, leased by a worker of
/// the ComfyUI engine, its pictures uploaded and named in the graph, the graph queued as it is, the outputs collected
/// from the history; a worker whose engine cannot run it fails the job with the reason. ComfyUI itself cannot run here:
/// its protocol stand-in (prompt, websocket, history, view, upload) runs the standard graphs on the built-in engine.
/// </summary>
public class ComfyWorkflowTests
{
    private static JsonElement Workflow(string checkpoint, string? image = null) => JsonSerializer.SerializeToElement(ComfyUiAdapter.Graph(new EngineJob
    {
        Model = "atelier-demo", Prompt = "a red fox", Steps = 2, Width = 64, Height = 64, DenoisingStrength = 0.6, JobId = "unused",
    }, checkpoint, 5, image));

    [Fact]
    public async Task Workflow_RunsOnAComfyUiWorker_ItsPicturesUploadedAndItsOutputsCollected()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var models = Directory.CreateTempSubdirectory("atelier-comfy-models-").FullName;
        DemoModel.Ensure(models);
        using var builtin = new BuiltinAdapter(models);
        await using var comfy = await ComfyStandIn.StartAsync(builtin, "atelier-demo.safetensors");
        await using (var worker = await InProcessWorker.StartAsync(host, "comfyui", adapter: new ComfyUiAdapter(new HttpClient { BaseAddress = comfy.BaseAddress })))
        {
            var app = world.AppOf(host);
            var picture = Png.Encode([.. Enumerable.Range(0, 80 * 64 * 3).Select(i => (byte)(i % 199))], 80, 64);
            var accepted = await app.PostAsync("/api/v1/predict/comfyui", new
            {
                workflow = Workflow("atelier-demo.safetensors", "input.png"), images = new Dictionary<string, string> { ["input.png"] = Convert.ToBase64String(picture) },
            });
            Assert.Equal(HttpStatusCode.Accepted, accepted.Status);
            var taskId = accepted.Json.GetProperty("data").GetProperty("taskId").GetString()!;
            var result = await Eventually.ValueAsync(async () => (await app.GetAsync($"/api/v1/tasks/{taskId}/result")).Json,
                r => r.TryGetProperty("data", out var d) && d.GetProperty("state").GetString() is "succeeded" or "failed", "the workflow's task ends");
            Assert.Equal("succeeded", result.GetProperty("data").GetProperty("state").GetString());
            Assert.Equal(1, result.GetProperty("data").GetProperty("images").GetArrayLength());
            var task = (await app.GetAsync($"/api/v1/tasks/{taskId}")).Json.GetProperty("data");
            Assert.Equal("comfyui", task.GetProperty("kind").GetString());
            using var image = await app.Http.SendAsync(app.Authorize(new HttpRequestMessage(HttpMethod.Get, $"/api/v1/tasks/{taskId}/images/0")));
            var png = PngDecoder.Decode(await image.Content.ReadAsByteArrayAsync());
            Assert.Equal((64, 64), (png.Width, png.Height));
            // The picture went up once, under a name of the job's, and the graph's LoadImage names that, not the client's name.
            var uploaded = Assert.Single(comfy.Inputs);
            Assert.Equal(picture, uploaded.Value);
            Assert.Equal(uploaded.Key, comfy.LastGraph!["10"]!["inputs"]!["image"]!.GetValue<string>());
            // What it saves is named by the job, so its files on the ComfyUI server are its own.
            Assert.Equal($"atelier-{taskId}", comfy.LastGraph["9"]!["inputs"]!["filename_prefix"]!.GetValue<string>());
        }

        // A worker of another engine leases it and fails it with the reason, at once.
        await using (var builtinWorker = await InProcessWorker.StartAsync(host, "builtin", id: "builtin-worker", models: models))
        {
            var app = world.AppOf(host);
            var taskId = (await app.PostAsync("/api/v1/predict/comfyui", new { workflow = Workflow("atelier-demo.safetensors") })).Json
                .GetProperty("data").GetProperty("taskId").GetString()!;
            var failed = await Eventually.ValueAsync(async () => (await app.GetAsync($"/api/v1/tasks/{taskId}")).Json.GetProperty("data"),
                t => t.GetProperty("state").GetString() is "failed" or "succeeded", "the workflow's task ends");
            Assert.Equal("failed", failed.GetProperty("state").GetString());
            Assert.Contains("does not run ComfyUI workflows", failed.GetProperty("errorMessage").GetString(), StringComparison.Ordinal);
        }

        Directory.Delete(models, recursive: true);
    }

    private static JsonElement Patched(JsonElement workflow, string node, string input, int value)
    {
        var graph = System.Text.Json.Nodes.JsonNode.Parse(workflow.GetRawText())!;
        graph[node]!["inputs"]![input] = value;
        return JsonSerializer.SerializeToElement(graph);
    }

    [Fact]
    public async Task Workflow_ThatIsNotOne_IsRefusedBeforeAnythingIsQueued()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var good = Workflow("atelier-demo.safetensors", "input.png");
        var picture = Convert.ToBase64String(Png.Encode(new byte[64 * 64 * 3], 64, 64));
        object[] bad =
        [
            new { },
            new { workflow = "not a graph" },
            new { workflow = new Dictionary<string, object> { ["1"] = new { inputs = new { } } } },
            new { workflow = new Dictionary<string, object> { ["1"] = new { class_type = "KSampler", inputs = new { } } } }, // no SaveImage
            new { workflow = good, images = new Dictionary<string, string> { ["../escape.png"] = picture } },
            new { workflow = good, images = new Dictionary<string, string> { ["input.gif"] = picture } },
            new { workflow = good, images = new Dictionary<string, string> { ["input.png"] = Convert.ToBase64String("not a picture"u8.ToArray()) } },
            // A loader that reads a file of the ComfyUI server's (another job's output) rather than the job's own picture.
            new { workflow = good, images = new Dictionary<string, string> { ["other.png"] = picture } },
            new { workflow = Workflow("atelier-demo.safetensors", "atelier_00042_.png [output]"), images = new Dictionary<string, string> { ["input.png"] = picture } },
            // Too large a latent, too many pictures.
            new { workflow = Patched(Workflow("atelier-demo.safetensors"), "5", "width", 100_000) },
            new { workflow = Patched(Workflow("atelier-demo.safetensors"), "5", "batch_size", 17) },
        ];
        foreach (var body in bad)
        {
            (await app.PostAsync("/api/v1/predict/comfyui", body)).Error(ErrorCatalog.p_common_inputinvalid, 400);
        }

        Assert.Equal(0, (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
    }
}
