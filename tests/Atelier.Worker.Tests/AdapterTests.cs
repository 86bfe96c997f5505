using Atelier.Engine.Images;
using Atelier.Worker.Adapters;

namespace Atelier.Worker.Tests;

public class AdapterTests(EngineFixture engine) : IClassFixture<EngineFixture>
{
    private sealed class Collect : IProgress<EngineProgress>
    {
        public List<EngineProgress> Seen { get; } = [];
        public void Report(EngineProgress value)
        {
            lock (Seen)
            {
                Seen.Add(value);
            }
        }
    }

    [Fact]
    public async Task Builtin_GeneratesInProcess()
    {
        using var builtin = new BuiltinAdapter(engine.Models);
        var models = await builtin.ListModelsAsync(CancellationToken.None);
        var progress = new Collect();
        var result = await builtin.GenerateAsync(new EngineJob { Model = models[0].ShortHash, Prompt = "fox", Steps = 5, Width = 64, Height = 64, Seed = 9 }, progress, CancellationToken.None);
        Assert.Single(result.Images);
        Assert.Equal([9L], result.Seeds);
        Assert.Equal(5, progress.Seen.Count);
        await Assert.ThrowsAsync<EngineFailedException>(() => builtin.GenerateAsync(new EngineJob { Model = "ghost" }, null, CancellationToken.None));
    }

    [Fact]
    public async Task A1111_ResolvesCheckpointAndVerifiesHash()
    {
        using var a1111 = new A1111Adapter(new HttpClient { BaseAddress = engine.Http.BaseAddress });
        var models = await a1111.ListModelsAsync(CancellationToken.None);
        var demo = Assert.Single(models);
        var result = await a1111.GenerateAsync(new EngineJob { Model = "atelier-demo", Prompt = "fox", Steps = 4, Width = 64, Height = 64, Seed = 11, BatchSize = 2 }, null, CancellationToken.None);
        Assert.Equal(2, result.Images.Count);
        Assert.Equal([11L, 12L], result.Seeds);
        Assert.Equal(demo.ShortHash, result.ModelHash);
        Assert.Contains("Seed: 11", Png.ReadText(result.Images[0])["parameters"], StringComparison.Ordinal);
        // The same request straight to the built-in engine gives the same bytes.
        using var builtin = new BuiltinAdapter(engine.Models);
        var direct = await builtin.GenerateAsync(new EngineJob { Model = "atelier-demo", Prompt = "fox", Steps = 4, Width = 64, Height = 64, Seed = 11, BatchSize = 2 }, null, CancellationToken.None);
        Assert.Equal(direct.Images[1], result.Images[1]);
    }

    /// <summary>Sends to the real engine, keeping the body of each generation request as it went over the wire.</summary>
    private sealed class Recording() : DelegatingHandler(new HttpClientHandler())
    {
        public List<System.Text.Json.JsonElement> Generations { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Method == HttpMethod.Post && request.RequestUri!.AbsolutePath.EndsWith("2img", StringComparison.Ordinal))
            {
                Generations.Add(System.Text.Json.JsonDocument.Parse(await request.Content!.ReadAsStringAsync(cancellationToken)).RootElement.Clone());
            }

            return await base.SendAsync(request, cancellationToken);
        }
    }

    [Fact]
    public async Task A1111_ForwardsTheWholeRequest_ExtensionsScriptsAndSettings_SettingOnlyWhatItMust()
    {
        var recording = new Recording();
        using var a1111 = new A1111Adapter(new HttpClient(recording) { BaseAddress = engine.Http.BaseAddress });
        var title = (await a1111.ListModelsAsync(CancellationToken.None))[0].Title;
        using var request = System.Text.Json.JsonDocument.Parse("""
            {"prompt": "fox", "steps": 3, "width": 64, "height": 64, "seed": 11, "batch_size": 1, "n_iter": 2,
             "alwayson_scripts": {"controlnet": {"args": [{"module": "canny", "weight": 0.8}]}},
             "script_name": "x/y/z plot", "script_args": [1, "a"], "enable_hr": true, "hr_scale": 2,
             "override_settings": {"sd_model_checkpoint": "my-registry-name", "CLIP_stop_at_last_layers": 2},
             "styles": ["cinematic"]}
            """);
        var result = await a1111.GenerateAsync(new EngineJob
        {
            Model = "atelier-demo", Prompt = "fox", Steps = 3, Width = 64, Height = 64, Seed = 11, BatchSize = 2, JobId = "pass-1", Request = request.RootElement,
        }, null, CancellationToken.None);

        Assert.Equal(2, result.Images.Count);
        var sent = Assert.Single(recording.Generations);
        Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(request.RootElement.GetProperty("alwayson_scripts").GetRawText()),
            System.Text.Json.Nodes.JsonNode.Parse(sent.GetProperty("alwayson_scripts").GetRawText())), sent.GetProperty("alwayson_scripts").GetRawText());
        Assert.Equal("x/y/z plot", sent.GetProperty("script_name").GetString());
        Assert.Equal("[1,\"a\"]", sent.GetProperty("script_args").GetRawText());
        Assert.True(sent.GetProperty("enable_hr").GetBoolean());
        Assert.Equal(2, sent.GetProperty("hr_scale").GetInt32());
        Assert.Equal((1, 2), (sent.GetProperty("batch_size").GetInt32(), sent.GetProperty("n_iter").GetInt32()));
        Assert.Equal("cinematic", sent.GetProperty("styles")[0].GetString());
        // The checkpoint is the engine's own title for the model; the caller's other settings go with it.
        var overrides = sent.GetProperty("override_settings");
        Assert.Equal((title, 2), (overrides.GetProperty("sd_model_checkpoint").GetString(), overrides.GetProperty("CLIP_stop_at_last_layers").GetInt32()));
        Assert.Equal("task(atelier-pass-1)", sent.GetProperty("force_task_id").GetString());
        Assert.True(sent.GetProperty("send_images").GetBoolean());
    }

    [Fact]
    public async Task A1111_UnknownCheckpointOrSampler_FailsLoudly()
    {
        using var a1111 = new A1111Adapter(new HttpClient { BaseAddress = engine.Http.BaseAddress });
        var missing = await Assert.ThrowsAsync<EngineFailedException>(() => a1111.GenerateAsync(new EngineJob { Model = "sdxl-base" }, null, CancellationToken.None));
        Assert.Contains("sdxl-base", missing.Message, StringComparison.Ordinal);
        var sampler = await Assert.ThrowsAsync<EngineFailedException>(() =>
            a1111.GenerateAsync(new EngineJob { Model = "atelier-demo", Sampler = "Nope", Steps = 2, Width = 64, Height = 64 }, null, CancellationToken.None));
        Assert.Contains("Sampler not found", sampler.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ComfyUi_AgainstStandIn_PromptWebsocketHistoryView()
    {
        using var builtin = new BuiltinAdapter(engine.Models);
        await using var comfy = await ComfyStandIn.StartAsync(builtin, "atelier-demo.safetensors");
        using var adapter = new ComfyUiAdapter(new HttpClient { BaseAddress = comfy.BaseAddress });
        var models = await adapter.ListModelsAsync(CancellationToken.None);
        Assert.Equal("atelier-demo", Assert.Single(models).Name);
        var progress = new Collect();
        var job = new EngineJob { Model = "atelier-demo", Prompt = "fox", Sampler = "DPM++ 2M", Schedule = "Karras", Steps = 6, Width = 64, Height = 64, Seed = 21, BatchSize = 2 };
        var result = await adapter.GenerateAsync(job, progress, CancellationToken.None);
        Assert.Equal(2, result.Images.Count);
        Assert.Equal([21L, 22L], result.Seeds);
        Assert.NotEmpty(progress.Seen);
        var ksampler = comfy.LastGraph!["3"]!["inputs"]!;
        Assert.Equal("dpmpp_2m", ksampler["sampler_name"]!.GetValue<string>());
        Assert.Equal("karras", ksampler["scheduler"]!.GetValue<string>());
        Assert.Equal(21L, ksampler["seed"]!.GetValue<long>());
        Assert.Equal("atelier-demo.safetensors", comfy.LastGraph["4"]!["inputs"]!["ckpt_name"]!.GetValue<string>());
        Assert.StartsWith("fox\n", Png.ReadText(result.Images[0])["parameters"], StringComparison.Ordinal);

        // What its standard graph does not do is a failure that says so, not another picture.
        var refused = await Assert.ThrowsAsync<EngineFailedException>(() => adapter.GenerateAsync(job with
        {
            Hires = new Engine.Pipeline.HiresFix { Scale = 2 }, RefinerCheckpoint = "refiner",
        }, null, CancellationToken.None));
        Assert.StartsWith("the ComfyUI adapter's graph does not run the hires fix (enable_hr), a refiner (refiner_checkpoint)", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ComfyUi_Img2Img_UploadsTheInitImage_EncodesItAndSamplesAtTheStrength()
    {
        using var builtin = new BuiltinAdapter(engine.Models);
        await using var comfy = await ComfyStandIn.StartAsync(builtin, "atelier-demo.safetensors");
        using var adapter = new ComfyUiAdapter(new HttpClient { BaseAddress = comfy.BaseAddress });
        var init = Png.Encode([.. Enumerable.Range(0, 96 * 64 * 3).Select(i => (byte)(i % 241))], 96, 64);
        var job = new EngineJob
        {
            Model = "atelier-demo", Prompt = "a variation", Sampler = "DPM++ 2M SDE Karras", Steps = 4, Width = 64, Height = 64, Seed = 5, BatchSize = 2,
            InitImagePng = init, DenoisingStrength = 0.6, ResizeMode = 1, JobId = "img2img-" + Guid.NewGuid().ToString("N")[..8],
        };
        var result = await adapter.GenerateAsync(job, null, CancellationToken.None);

        Assert.Equal(2, result.Images.Count);
        var uploaded = Assert.Single(comfy.Inputs);
        Assert.Equal(init, uploaded.Value);
        var graph = comfy.LastGraph!;
        Assert.Equal(uploaded.Key, graph["10"]!["inputs"]!["image"]!.GetValue<string>());
        Assert.Equal(("ImageScale", "center", "lanczos"), (graph["11"]!["class_type"]!.GetValue<string>(), graph["11"]!["inputs"]!["crop"]!.GetValue<string>(),
            graph["11"]!["inputs"]!["upscale_method"]!.GetValue<string>()));
        Assert.Equal("VAEEncode", graph["12"]!["class_type"]!.GetValue<string>());
        Assert.Equal(2, graph["13"]!["inputs"]!["amount"]!.GetValue<int>());
        var ksampler = graph["3"]!["inputs"]!;
        Assert.Equal(("dpmpp_2m_sde", "karras", 0.6), (ksampler["sampler_name"]!.GetValue<string>(), ksampler["scheduler"]!.GetValue<string>(), ksampler["denoise"]!.GetValue<double>()));
        Assert.Equal("13", ksampler["latent_image"]![0]!.GetValue<string>());
        Assert.False(graph.AsObject().ContainsKey("5"), "no empty latent in an img2img graph");
        Assert.Contains("Denoising strength: 0.6", Png.ReadText(result.Images[0])["parameters"], StringComparison.Ordinal);

        // "Automatic" is A1111's default for the sampler; a sampler ComfyUI does not have fails the job by name.
        Assert.Equal("karras", ComfyUiAdapter.ComfyScheduler("DPM++ 2M", "Automatic"));
        Assert.Equal("sgm_uniform", ComfyUiAdapter.ComfyScheduler("Euler", "sgm_uniform"));
        var refused = await Assert.ThrowsAsync<EngineFailedException>(() =>
            adapter.GenerateAsync(new EngineJob { Model = "atelier-demo", Sampler = "Restart", Steps = 2, Width = 64, Height = 64 }, null, CancellationToken.None));
        Assert.StartsWith("ComfyUI has no sampler like Restart", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ComfyUi_Inpainting_UploadsTheCutOutAndItsMask_SetsTheNoiseMask_AndPutsThePictureBack()
    {
        using var builtin = new BuiltinAdapter(engine.Models);
        await using var comfy = await ComfyStandIn.StartAsync(builtin, "atelier-demo.safetensors");
        using var adapter = new ComfyUiAdapter(new HttpClient { BaseAddress = comfy.BaseAddress });
        // A flat 128×96 grey picture; the mask's white 16×16 square at (70, 30); only masked with 8 pixels of padding.
        var init = Png.Encode([.. Enumerable.Repeat((byte)90, 128 * 96 * 3)], 128, 96);
        var maskRgb = new byte[128 * 96 * 3];
        for (var y = 30; y < 46; y++)
        {
            maskRgb.AsSpan(((y * 128) + 70) * 3, 16 * 3).Fill(255);
        }

        var job = new EngineJob
        {
            Model = "atelier-demo", Prompt = "a window", Sampler = "Euler", Steps = 3, Width = 64, Height = 64, Seed = 5, InitImagePng = init,
            MaskPng = Png.Encode(maskRgb, 128, 96), Inpaint = new() { Padding = 8, BlurX = 0, BlurY = 0 }, DenoisingStrength = 0.9,
            JobId = "inpaint-" + Guid.NewGuid().ToString("N")[..8],
        };
        var result = await adapter.GenerateAsync(job, null, CancellationToken.None);

        var graph = comfy.LastGraph!;
        Assert.Equal("SetLatentNoiseMask", graph["16"]!["class_type"]!.GetValue<string>());
        Assert.Equal(("ImageToMask", "red"), (graph["15"]!["class_type"]!.GetValue<string>(), graph["15"]!["inputs"]!["channel"]!.GetValue<string>()));
        Assert.Equal("16", graph["3"]!["inputs"]!["latent_image"]![0]!.GetValue<string>());
        // Uploaded: the 32×32 cut-out at the job's 64×64, and its mask (white in the middle, where the square was).
        var mask = PngDecoder.Decode(comfy.Inputs[graph["14"]!["inputs"]!["image"]!.GetValue<string>()]);
        Assert.Equal((64, 64), (mask.Width, mask.Height));
        Assert.Equal((0, 255), (mask.Rgb[0], mask.Rgb[((32 * 64) + 32) * 3]));
        Assert.Equal(64, PngDecoder.Decode(comfy.Inputs[graph["10"]!["inputs"]!["image"]!.GetValue<string>()]).Width);
        // Back in the 128×96 original: grey away from the square, the model's picture inside it.
        var picture = PngDecoder.Decode(Assert.Single(result.Images));
        Assert.Equal((128, 96), (picture.Width, picture.Height));
        Assert.Equal([90, 90, 90], picture.Rgb.AsSpan(((5 * 128) + 5) * 3, 3).ToArray());
        Assert.NotEqual([90, 90, 90], picture.Rgb.AsSpan(((38 * 128) + 78) * 3, 3).ToArray());
    }

    [Fact]
    public async Task ComfyUi_Cancel_InterruptsThePrompt()
    {
        using var builtin = new BuiltinAdapter(engine.Models);
        await using var comfy = await ComfyStandIn.StartAsync(builtin, "atelier-demo.safetensors");
        using var adapter = new ComfyUiAdapter(new HttpClient { BaseAddress = comfy.BaseAddress });
        using var cts = new CancellationTokenSource();
        var progress = new Collect();
        var run = adapter.GenerateAsync(new EngineJob { Model = "atelier-demo", Steps = 500, Width = 512, Height = 512, BatchSize = 16 }, progress, cts.Token);
        await Atelier.Server.Tests.Infrastructure.Eventually.UntilAsync(() => progress.Seen.Count > 0, "the job reported progress");

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
    }
}
