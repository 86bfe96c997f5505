using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Engine.Images;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Predict;

/// <summary>One server and one in-process worker on the built-in engine with the demo model, shared by the predict tests.</summary>
public sealed class PredictHost : IAsyncLifetime
{
    public TestHost Host { get; private set; } = null!;
    public TenantWorld World { get; private set; } = null!;
    private InProcessWorker _worker = null!;

    public async ValueTask InitializeAsync()
    {
        Host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Jobs:SyncTimeoutSeconds"] = "60" });
        World = await Scenario.NewTenantAsync(Host);
        _worker = await InProcessWorker.StartAsync(Host, "builtin", slots: 2);
    }

    public async ValueTask DisposeAsync()
    {
        await _worker.DisposeAsync();
        await Host.DisposeAsync();
    }
}

/// <summary>
/// The AUTOMATIC1111 API and the async predict API on the server, end to end: HTTP in, a job, a worker leasing it over
/// HTTP and running the built-in engine, images through the object store, the answer in A1111's shape.
/// </summary>
public class PredictTests(PredictHost shared) : IClassFixture<PredictHost>
{
    private TestHost Host => shared.Host;
    private TenantWorld World => shared.World;
    private ApiClient App => World.AppOf(Host);

    private static byte[] Image(JsonElement response, int i) => Convert.FromBase64String(response.GetProperty("images")[i].GetString()!);

    [Fact]
    public async Task Txt2Img_Sync_AnswersInA1111Shape_WithPngsAndInfo()
    {
        var r = await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "a red fox", steps = 6, width = 128, height = 96, seed = 1234, batch_size = 2, sampler_name = "Euler a" });
        Assert.Equal(HttpStatusCode.OK, r.Status);
        var body = r.Json;
        Assert.Equal(2, body.GetProperty("images").GetArrayLength());
        var png = Image(body, 0);
        Assert.Equal((128, 96), (PngDecoder.Decode(png).Width, PngDecoder.Decode(png).Height));
        var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
        Assert.Equal(1234, info.GetProperty("seed").GetInt64());
        Assert.Equal([1234L, 1235L], info.GetProperty("all_seeds").EnumerateArray().Select(s => s.GetInt64()));
        Assert.Equal("a red fox", body.GetProperty("parameters").GetProperty("prompt").GetString());
        Assert.Equal(6, body.GetProperty("parameters").GetProperty("steps").GetInt32());
        Assert.Contains("Seed: 1234", Png.ReadText(png)["parameters"], StringComparison.Ordinal);
        // The same request again gives the same picture (the seed decides; float sums may differ in the last bit across threads).
        var again = (await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "a red fox", steps = 6, width = 128, height = 96, seed = 1234, batch_size = 2, sampler_name = "Euler a" })).Json;
        var (x, y) = (PngDecoder.Decode(png).Rgb, PngDecoder.Decode(Image(again, 0)).Rgb);
        Assert.True(x.Zip(y).All(p => Math.Abs(p.First - p.Second) <= 2), "the same seed gave another picture");
        var other = (await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "a red fox", steps = 6, width = 128, height = 96, seed = 4321, sampler_name = "Euler a" })).Json;
        Assert.False(PngDecoder.Decode(Image(other, 0)).Rgb.Zip(x).All(p => Math.Abs(p.First - p.Second) <= 2), "another seed gave the same picture");
    }

    [Fact]
    public async Task Txt2Img_HttpBasic_AsA1111ApiAuthClientsSendIt()
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, "/sdapi/v1/txt2img")
        {
            Content = new StringContent("""{"prompt":"basic","steps":2,"width":64,"height":64}""", Encoding.UTF8, "application/json"),
        };
        req.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"studio:{World.AppToken}")));
        using var r = await Host.Client.Http.SendAsync(req);
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        using var wrong = new HttpRequestMessage(HttpMethod.Get, "/sdapi/v1/sd-models");
        wrong.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String("studio:atk_wrong"u8.ToArray()));
        Assert.Equal(HttpStatusCode.Unauthorized, (await Host.Client.Http.SendAsync(wrong)).StatusCode);
    }

    /// <summary>A1111's samples_format: JPEG and WebP answers with the infotext in EXIF (png-info reads it back), per request or per caller.</summary>
    [Fact]
    public async Task SamplesFormat_JpegAndWebp_PerRequestOrPerCaller_CarryTheInfotextInExif()
    {
        var (_, app) = await Scenario.NewAppAsync(Host, World, "formats-" + Guid.NewGuid().ToString("N")[..6]);
        var jpg = await app.PostAsync("/sdapi/v1/txt2img", new Dictionary<string, object>
        {
            ["prompt"] = "a red fox 狐", ["steps"] = 2, ["width"] = 64, ["height"] = 64, ["seed"] = 3,
            ["override_settings"] = new Dictionary<string, object> { ["samples_format"] = "jpg", ["jpeg_quality"] = 90.0 },
        });
        Assert.Equal(HttpStatusCode.OK, jpg.Status);
        var jpeg = Image(jpg.Json, 0);
        Assert.Equal([0xFF, 0xD8], jpeg[..2]);
        Assert.Equal((64, 64), (ImageDecoder.DecodeOriginal(jpeg).Width, ImageDecoder.DecodeOriginal(jpeg).Height));
        var read = (await app.PostAsync("/sdapi/v1/png-info", new { image = Convert.ToBase64String(jpeg) })).Json;
        Assert.Equal("a red fox 狐", read.GetProperty("parameters").GetProperty("Prompt").GetString());
        Assert.Equal("3", read.GetProperty("parameters").GetProperty("Seed").GetString());

        // The caller's own option: WebP from now on, for this credential only.
        Assert.Equal(HttpStatusCode.OK, (await app.PostAsync("/sdapi/v1/options", new Dictionary<string, object> { ["samples_format"] = "webp" })).Status);
        var webp = Image((await app.PostAsync("/sdapi/v1/txt2img", new { prompt = "a blue kite", steps = 2, width = 64, height = 64, seed = 4 })).Json, 0);
        Assert.Equal("RIFF", Encoding.ASCII.GetString(webp, 0, 4));
        Assert.Equal("WEBP", Encoding.ASCII.GetString(webp, 8, 4));
        Assert.Equal("a blue kite", (await app.PostAsync("/sdapi/v1/png-info", new { image = Convert.ToBase64String(webp) })).Json
            .GetProperty("parameters").GetProperty("Prompt").GetString());
        var other = Image((await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "still png", steps = 2, width = 64, height = 64 })).Json, 0);
        Assert.Equal(0x89, other[0]);

        // A format or quality A1111 could not encode is refused before it is stored.
        (await app.PostAsync("/sdapi/v1/options", new Dictionary<string, object> { ["samples_format"] = "gif" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/sdapi/v1/options", new Dictionary<string, object> { ["jpeg_quality"] = 0 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/sdapi/v1/options", new Dictionary<string, object> { ["randn_source"] = "TPU" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal("webp", (await app.GetAsync("/sdapi/v1/options")).Json.GetProperty("samples_format").GetString());
    }

    /// <summary>A1111's variation seeds through the server and the worker: the seed stays, the subseeds count up, the infotext says so.</summary>
    [Fact]
    public async Task VariationSeeds_GoThroughTheWorker_AndOutOfRangeIsRefusedBeforeQueueing()
    {
        var r = await App.PostAsync("/sdapi/v1/txt2img", new Dictionary<string, object>
        {
            ["prompt"] = "variations", ["steps"] = 2, ["width"] = 64, ["height"] = 64, ["seed"] = 500, ["subseed"] = 900, ["subseed_strength"] = 0.4, ["batch_size"] = 2,
            ["seed_resize_from_w"] = 128, ["seed_resize_from_h"] = 128,
        });
        Assert.Equal(HttpStatusCode.OK, r.Status);
        using var info = JsonDocument.Parse(r.Json.GetProperty("info").GetString()!);
        Assert.Equal([500L, 500L], info.RootElement.GetProperty("all_seeds").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Equal([900L, 901L], info.RootElement.GetProperty("all_subseeds").EnumerateArray().Select(e => e.GetInt64()));
        Assert.Contains("Variation seed: 901, Variation seed strength: 0.4, Seed resize from: 128x128", info.RootElement.GetProperty("infotexts")[1].GetString(), StringComparison.Ordinal);
        Assert.NotEqual(Image(r.Json, 0), Image(r.Json, 1));

        (await App.PostAsync("/sdapi/v1/txt2img", new Dictionary<string, object> { ["prompt"] = "x", ["subseed_strength"] = 1.5 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await App.PostAsync("/sdapi/v1/txt2img", new Dictionary<string, object> { ["prompt"] = "x", ["seed_resize_from_w"] = 100000 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
    }

    [Fact]
    public async Task HiresFix_GoesThroughTheWorker_AndItsSizeCountsAgainstTheLimits()
    {
        var r = await App.PostAsync("/sdapi/v1/txt2img", new Dictionary<string, object>
        {
            ["prompt"] = "hires", ["steps"] = 2, ["width"] = 64, ["height"] = 64, ["enable_hr"] = true, ["hr_resize_x"] = 128, ["hr_resize_y"] = 96,
            ["hr_upscaler"] = "Lanczos", ["denoising_strength"] = 0.5,
        });
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.Equal((128, 96), (PngDecoder.Decode(Image(r.Json, 0)).Width, PngDecoder.Decode(Image(r.Json, 0)).Height));
        (await App.PostAsync("/sdapi/v1/txt2img", new Dictionary<string, object> { ["prompt"] = "x", ["enable_hr"] = true, ["hr_scale"] = 9 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        // Off, its fields are not looked at (clients send A1111's whole default body).
        Assert.Equal(HttpStatusCode.OK, (await App.PostAsync("/sdapi/v1/txt2img", new Dictionary<string, object>
        {
            ["prompt"] = "x", ["steps"] = 2, ["width"] = 64, ["height"] = 64, ["enable_hr"] = false, ["hr_scale"] = 0, ["hr_upscaler"] = "Latent",
        })).Status);
        (await App.PostAsync("/sdapi/v1/txt2img", new Dictionary<string, object> { ["prompt"] = "x", ["width"] = 2048, ["height"] = 2048, ["enable_hr"] = true, ["hr_scale"] = 4 }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
        // An upscaler the worker's engine does not have fails the job with the engine's words, not a 500.
        var unknown = (await App.PostAsync("/sdapi/v1/txt2img", new Dictionary<string, object>
        {
            ["prompt"] = "x", ["steps"] = 2, ["width"] = 64, ["height"] = 64, ["enable_hr"] = true, ["hr_upscaler"] = "SwinIR 4x",
        })).Error(ErrorCatalog.b_predict_predictfail, 502);
        Assert.Contains("could not find upscaler named SwinIR 4x", unknown.GetRawText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Img2Img_TakesTheInitImage()
    {
        var init = Image((await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "init", steps = 3, width = 64, height = 64, seed = 7 })).Json, 0);
        var r = await App.PostAsync("/sdapi/v1/img2img", new { prompt = "variation", steps = 4, width = 64, height = 64, seed = 8, denoising_strength = 0.5, init_images = new[] { Convert.ToBase64String(init) } });
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.Equal((64, 64), (PngDecoder.Decode(Image(r.Json, 0)).Width, PngDecoder.Decode(Image(r.Json, 0)).Height));
        Assert.NotEqual(PngDecoder.Decode(init).Rgb, PngDecoder.Decode(Image(r.Json, 0)).Rgb);
        (await App.PostAsync("/sdapi/v1/img2img", new { prompt = "no image" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await App.PostAsync("/sdapi/v1/img2img", new { prompt = "junk", init_images = new[] { "%%%not base64%%%" } })).Error(ErrorCatalog.p_common_inputinvalid, 400);

        // resize_mode: crop and resize runs through the worker; a mode A1111 does not have is refused before anything is queued.
        var cropped = await App.PostAsync("/sdapi/v1/img2img", new { prompt = "cropped", steps = 2, width = 96, height = 64, seed = 9, resize_mode = 1, init_images = new[] { Convert.ToBase64String(init) } });
        Assert.Equal(HttpStatusCode.OK, cropped.Status);
        Assert.Equal((96, 64), (PngDecoder.Decode(Image(cropped.Json, 0)).Width, PngDecoder.Decode(Image(cropped.Json, 0)).Height));
        (await App.PostAsync("/sdapi/v1/img2img", new { prompt = "mode", steps = 2, width = 64, height = 64, resize_mode = 4, init_images = new[] { Convert.ToBase64String(init) } }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
    }

    [Fact]
    public async Task Img2Img_SdUpscaleScript_RunsTileByTileThroughTheWorker_AndBadArgumentsAreRefusedBeforeQueueing()
    {
        var scripts = (await App.GetAsync("/sdapi/v1/scripts")).Json;
        Assert.Equal(["sd upscale"], scripts.GetProperty("img2img").EnumerateArray().Select(s => s.GetString()));
        var info = (await App.GetAsync("/sdapi/v1/script-info")).Json[0];
        Assert.Equal(("sd upscale", true), (info.GetProperty("name").GetString(), info.GetProperty("is_img2img").GetBoolean()));
        Assert.Equal(["None", "Lanczos", "Nearest"], info.GetProperty("args")[2].GetProperty("choices").EnumerateArray().Select(c => c.GetString()));

        // A 64×64 picture, twice as large in 64×64 tiles overlapping by 16: 3 × 3 tiles redrawn and laid back together.
        var init = Convert.ToBase64String(Image((await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "init", steps = 2, width = 64, height = 64, seed = 7 })).Json, 0));
        var r = await App.PostAsync("/sdapi/v1/img2img", new
        {
            prompt = "detail", steps = 2, width = 64, height = 64, seed = 30, denoising_strength = 0.4, init_images = new[] { init },
            script_name = "SD upscale", script_args = new object[] { "", 16, 1, 2.0 },
        });
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.Equal((128, 128), (PngDecoder.Decode(Image(r.Json, 0)).Width, PngDecoder.Decode(Image(r.Json, 0)).Height));
        Assert.Contains("SD upscale overlap: 16, SD upscale upscaler: Lanczos", r.Json.GetProperty("info").GetString(), StringComparison.Ordinal);

        var before = (await App.GetAsync("/api/v1/agents/default/jobs?pageSize=100")).Ok().GetProperty("total").GetInt32();
        foreach (var bad in new object[] { "not a list", new object[] { "", -16 }, new object[] { "", 16, 1, 20 }, new object[] { "", 16, new { } }, new object[] { "", 512 } })
        {
            (await App.PostAsync("/sdapi/v1/img2img", new { prompt = "x", init_images = new[] { init }, script_name = "sd upscale", script_args = bad }))
                .Error(ErrorCatalog.p_common_inputinvalid, 400);
        }

        // An img2img script in txt2img: A1111's txt2img has no such script.
        (await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", script_name = "SD upscale", script_args = new object[] { "", 16 } })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal(before, (await App.GetAsync("/api/v1/agents/default/jobs?pageSize=100")).Ok().GetProperty("total").GetInt32());
        // An upscaler index this worker does not have: the engine refuses the job with the reason.
        var missing = (await App.PostAsync("/sdapi/v1/img2img", new
            {
                prompt = "x", steps = 2, width = 64, height = 64, init_images = new[] { init }, script_name = "sd upscale", script_args = new object[] { "", 16, 7, 2 },
            }))
            .Error(ErrorCatalog.b_predict_predictfail, 502);
        Assert.Contains("could not find upscaler 7", missing.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Img2Img_WithAMask_InpaintsThroughTheWorker_AndBadInpaintingFieldsAreRefusedBeforeQueueing()
    {
        // A 128×96 init and a mask whose white square covers (80..96, 40..56): only masked (A1111's default) puts the
        // generated box back into the 128×96 original, whose pixels away from the mask are unchanged.
        var init = Image((await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "init", steps = 3, width = 128, height = 96, seed = 7 })).Json, 0);
        var maskRgb = new byte[128 * 96 * 3];
        for (var y = 40; y < 56; y++)
        {
            maskRgb.AsSpan(((y * 128) + 80) * 3, 16 * 3).Fill(255);
        }

        var mask = Convert.ToBase64String(Png.Encode(maskRgb, 128, 96));
        var r = await App.PostAsync("/sdapi/v1/img2img", new
        {
            prompt = "a window", steps = 3, width = 64, height = 64, seed = 8, init_images = new[] { Convert.ToBase64String(init) }, mask, mask_blur = 0, inpainting_fill = 1,
        });
        Assert.Equal(HttpStatusCode.OK, r.Status);
        var (original, painted) = (PngDecoder.Decode(init), PngDecoder.Decode(Image(r.Json, 0)));
        Assert.Equal((128, 96), (painted.Width, painted.Height));
        Assert.Equal(original.Rgb.AsSpan(0, 128 * 30 * 3).ToArray(), painted.Rgb.AsSpan(0, 128 * 30 * 3).ToArray()); // rows above the box: the original's
        Assert.NotEqual(original.Rgb.AsSpan(((48 * 128) + 88) * 3, 3).ToArray(), painted.Rgb.AsSpan(((48 * 128) + 88) * 3, 3).ToArray());
        Assert.Contains("Inpaint area: Only masked", r.Json.GetProperty("info").GetString(), StringComparison.Ordinal);

        foreach (var bad in new Dictionary<string, object>[]
        {
            new() { ["inpainting_fill"] = 4 }, new() { ["mask_blur"] = 65 }, new() { ["inpaint_full_res"] = "yes" }, new() { ["inpaint_full_res_padding"] = -1 },
        })
        {
            var body = new Dictionary<string, object> { ["prompt"] = "x", ["init_images"] = new[] { Convert.ToBase64String(init) }, ["mask"] = mask };
            foreach (var (k, v) in bad)
            {
                body[k] = v;
            }

            (await App.PostAsync("/sdapi/v1/img2img", body)).Error(ErrorCatalog.p_common_inputinvalid, 400);
        }

        (await App.PostAsync("/sdapi/v1/img2img", new { prompt = "x", init_images = new[] { Convert.ToBase64String(init) }, mask = 5 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
    }

    [Fact]
    public async Task Model_ByTitleNameOrHash_UnknownIsRefused_BeforeAnythingIsQueued()
    {
        var model = (await App.GetAsync("/sdapi/v1/sd-models")).Json[0];
        foreach (var reference in new[] { model.GetProperty("title").GetString(), model.GetProperty("model_name").GetString(), model.GetProperty("hash").GetString(), model.GetProperty("sha256").GetString() })
        {
            var r = await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "by ref", steps = 2, width = 64, height = 64, override_settings = new { sd_model_checkpoint = reference } });
            Assert.Equal(HttpStatusCode.OK, r.Status);
        }

        var before = (await App.GetAsync("/api/v1/agents/default/jobs?pageSize=100")).Ok().GetProperty("total").GetInt32();
        (await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", override_settings = new { sd_model_checkpoint = "no-such-model" } }))
            .Error(ErrorCatalog.b_model_modelnotexist, 404, new Dictionary<string, string> { ["ID"] = "no-such-model" });
        (await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", steps = 500 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", width = 100 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await App.PostAsync("/sdapi/v1/txt2img", new { prompt = 5 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal(before, (await App.GetAsync("/api/v1/agents/default/jobs?pageSize=100")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task EngineFailure_IsPredictFail_WithTheEnginesMessage()
    {
        // An upscaler A1111 ships (R-ESRGAN 4x+) is a name the server queues; this worker's models folder has no such
        // upscaler, so the built-in engine refuses the job with A1111's message.
        var error = (await App.PostAsync("/sdapi/v1/txt2img", new
            {
                prompt = "x", steps = 2, width = 64, height = 64, enable_hr = true, hr_scale = 2, hr_upscaler = "R-ESRGAN 4x+", denoising_strength = 0.5,
            }))
            .Error(ErrorCatalog.b_predict_predictfail, 502);
        Assert.Contains("could not find upscaler named R-ESRGAN 4x+", error.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        var job = (await App.GetAsync("/api/v1/agents/default/jobs?state=failed")).Ok().GetProperty("items")[0];
        Assert.Equal(ErrorCatalog.b_predict_predictfail.Code, job.GetProperty("errorCode").GetString());
    }

    [Fact]
    public async Task SamplerNames_NotA1111s_AreRefusedBeforeQueueing_ItsLegacyNamesAndAliasesRun()
    {
        var before = (await App.GetAsync("/api/v1/agents/default/jobs?pageSize=100")).Ok().GetProperty("total").GetInt32();
        var refused = (await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", steps = 2, width = 64, height = 64, sampler_name = "No Such Sampler" }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Contains("Sampler not found", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
        (await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", sampler_index = "k_nope" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal(before, (await App.GetAsync("/api/v1/agents/default/jobs?pageSize=100")).Ok().GetProperty("total").GetInt32());
        foreach (var name in new[] { "DPM++ 2M Karras", "k_euler_a", "dpm++ sde exponential" })
        {
            Assert.Equal(HttpStatusCode.OK, (await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", steps = 2, width = 64, height = 64, sampler_name = name })).Status);
        }
    }

    [Fact]
    public async Task Async_Predict_Task_Events_Result_Images()
    {
        var accepted = (await App.PostAsync("/api/v1/predict/txt2img", new { prompt = "async fox", steps = 8, width = 64, height = 64, seed = 99 })).Ok(HttpStatusCode.Accepted);
        var task = accepted.GetProperty("taskId").GetString()!;
        using var req = new HttpRequestMessage(HttpMethod.Get, accepted.GetProperty("eventsUrl").GetString());
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", World.AppToken);
        using var stream = await Host.Client.Http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", stream.Content.Headers.ContentType?.MediaType);
        var events = new List<(string Event, JsonElement Data)>();
        await foreach (var item in System.Net.ServerSentEvents.SseParser.Create(await stream.Content.ReadAsStreamAsync()).EnumerateAsync())
        {
            events.Add((item.EventType, JsonDocument.Parse(item.Data).RootElement));
        }

        Assert.Equal("done", events[^1].Event);
        Assert.Equal("succeeded", events[^1].Data.GetProperty("state").GetString());
        Assert.All(events[..^1], e => Assert.Equal("progress", e.Event));

        var result = (await App.GetAsync($"/api/v1/tasks/{task}/result")).Ok();
        var image = result.GetProperty("images")[0];
        Assert.Equal(99, image.GetProperty("seed").GetInt64());
        using var get = new HttpRequestMessage(HttpMethod.Get, image.GetProperty("url").GetString());
        get.Headers.Authorization = new AuthenticationHeaderValue("Bearer", World.AppToken);
        using var png = await Host.Client.Http.SendAsync(get);
        Assert.Equal("image/png", png.Content.Headers.ContentType?.MediaType);
        Assert.Equal(64, PngDecoder.Decode(await png.Content.ReadAsByteArrayAsync()).Width);

        (await App.GetAsync("/api/v1/tasks/job_unknown/progress")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        (await App.GetAsync($"/api/v1/tasks/{task}/images/5")).Error(ErrorCatalog.p_common_inputinvalid, 404);
        // Another tenant's credential: the task does not exist for it.
        var other = await Scenario.NewTenantAsync(Host);
        (await other.AppOf(Host).GetAsync($"/api/v1/tasks/{task}/result")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        (await other.AppOf(Host).GetAsync(image.GetProperty("url").GetString()!)).Error(ErrorCatalog.b_agent_jobnotfound, 404);
    }

    [Fact]
    public async Task Async_IdempotencyKey_SameBodySameTask_OtherBodyRefused()
    {
        var keyed = App.WithHeader("Idempotency-Key", "order-" + Guid.NewGuid().ToString("N")[..8]);
        var first = (await keyed.PostAsync("/api/v1/predict/txt2img", new { prompt = "once", steps = 2, width = 64, height = 64 })).Ok(HttpStatusCode.Accepted);
        var second = (await keyed.PostAsync("/api/v1/predict/txt2img", new { prompt = "once", steps = 2, width = 64, height = 64 })).Ok(HttpStatusCode.Accepted);
        Assert.Equal(first.GetProperty("taskId").GetString(), second.GetProperty("taskId").GetString());
        (await keyed.PostAsync("/api/v1/predict/txt2img", new { prompt = "twice", steps = 2, width = 64, height = 64 })).Error(ErrorCatalog.b_agent_jobidexisted, 409);
    }

    [Fact]
    public async Task Options_ArePerToken_AndSessionsSeeOnlyTheirOwnTasks()
    {
        var admin = World.AdminOf(Host);
        var (_, b) = await Library.TwoModelsAsync(Host, World);
        // A token of its own: its checkpoint (a model the built-in worker cannot run) must not reach the other tests' token.
        var (_, App) = await Scenario.NewAppAsync(Host, World, "options-" + Guid.NewGuid().ToString("N")[..6]);
        var second = (await App.GetAsync("/sdapi/v1/sd-models")).Json.EnumerateArray().Single(m => m.GetProperty("model_name").GetString() == b);
        Assert.Equal(JsonValueKind.Null, (await App.PostAsync("/sdapi/v1/options", new { sd_model_checkpoint = second.GetProperty("title").GetString() })).Json.ValueKind);
        Assert.Equal(second.GetProperty("title").GetString(), (await App.GetAsync("/sdapi/v1/options")).Json.GetProperty("sd_model_checkpoint").GetString());
        // The admin token of the same tenant still has its own (the demo model).
        Assert.StartsWith("atelier-demo", (await admin.GetAsync("/sdapi/v1/options")).Json.GetProperty("sd_model_checkpoint").GetString(), StringComparison.Ordinal);
        var task = (await App.PostAsync("/api/v1/predict/txt2img", new { prompt = "with b", steps = 2, width = 64, height = 64 })).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString();
        Assert.Equal(b, (await App.GetAsync($"/api/v1/tasks/{task}")).Ok().GetProperty("model").GetProperty("name").GetString());
        (await App.PostAsync("/sdapi/v1/options", new { sd_model_checkpoint = "nope" })).Error(ErrorCatalog.b_model_modelnotexist, 404);

        // A session's tasks are its own; the token's tasks are not visible to it.
        var session = (await App.PostAsync("/api/v1/sessions", new { endUserId = "u-1", expiredAt = DateTime.UtcNow.AddHours(1) })).Created().GetProperty("credential").GetString()!;
        var user = Host.Client.With(session);
        var mine = (await user.PostAsync("/api/v1/predict/txt2img", new { prompt = "mine", steps = 2, width = 64, height = 64 })).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString();
        var tokens = (await App.PostAsync("/api/v1/predict/txt2img", new { prompt = "theirs", steps = 2, width = 64, height = 64 })).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString();
        (await user.GetAsync($"/api/v1/tasks/{mine}")).Ok();
        (await user.GetAsync($"/api/v1/tasks/{tokens}")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        (await App.GetAsync($"/api/v1/tasks/{mine}")).Ok();
        Assert.Equal(JsonValueKind.Object, (await user.GetAsync("/sdapi/v1/progress")).Json.GetProperty("state").ValueKind);
    }

    [Fact]
    public async Task ModelListsAndStaticLists_AndPngInfo()
    {
        var models = (await App.GetAsync("/sdapi/v1/sd-models")).Json;
        Assert.Contains(models.EnumerateArray(), m => m.GetProperty("model_name").GetString() == "atelier-demo" && m.GetProperty("hash").GetString()!.Length == 10);
        Assert.Contains((await App.GetAsync("/sdapi/v1/samplers")).Json.EnumerateArray(), s => s.GetProperty("name").GetString() == "DPM++ 2M");
        Assert.Contains((await App.GetAsync("/sdapi/v1/schedulers")).Json.EnumerateArray(), s => s.GetProperty("label").GetString() == "Karras");
        Assert.Equal(JsonValueKind.Array, (await App.GetAsync("/sdapi/v1/loras")).Json.ValueKind);
        Assert.Equal(JsonValueKind.Object, (await App.GetAsync("/sdapi/v1/embeddings")).Json.GetProperty("loaded").ValueKind);
        var png = Image((await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "info me", steps = 2, width = 64, height = 64, seed = 5 })).Json, 0);
        var info = (await App.PostAsync("/sdapi/v1/png-info", new { image = Convert.ToBase64String(png) })).Json;
        Assert.Equal("info me", info.GetProperty("parameters").GetProperty("Prompt").GetString());
        Assert.Equal("5", info.GetProperty("parameters").GetProperty("Seed").GetString());
    }

    /// <summary>A1111's extras with the upscalers that need no model: one image, a batch, and A1111's refusals.</summary>
    [Fact]
    public async Task Extras_UpscaleOneImageOrABatch_WithLanczosOrNearest()
    {
        var png = Image((await App.PostAsync("/sdapi/v1/txt2img", new { prompt = "a red ball", steps = 2, width = 64, height = 64, seed = 3 })).Json, 0);
        var one = (await App.PostAsync("/sdapi/v1/extra-single-image", new { image = Convert.ToBase64String(png), upscaling_resize = 2, upscaler_1 = "Lanczos" })).Json;
        var (_, w, h) = PngDecoder.Decode(Convert.FromBase64String(one.GetProperty("image").GetString()!));
        Assert.Equal((128, 128), (w, h));
        Assert.Equal("", one.GetProperty("html_info").GetString());

        var batch = (await App.PostAsync("/sdapi/v1/extra-batch-images", new
        {
            resize_mode = 1, upscaling_resize_w = 96, upscaling_resize_h = 80, upscaling_crop = true, upscaler_1 = "Nearest", gfpgan_visibility = 0.5,
            imageList = new[] { new { data = Convert.ToBase64String(png), name = "a.png" }, new { data = Convert.ToBase64String(png), name = "b.png" } },
        })).Json;
        Assert.Equal(2, batch.GetProperty("images").GetArrayLength());
        var (_, bw, bh) = PngDecoder.Decode(Convert.FromBase64String(batch.GetProperty("images")[1].GetString()!));
        Assert.Equal((96, 80), (bw, bh));
        Assert.Contains("face restoration is not available", batch.GetProperty("html_info").GetString(), StringComparison.Ordinal);

        var unknown = (await App.PostAsync("/sdapi/v1/extra-single-image", new { image = Convert.ToBase64String(png), upscaler_1 = "R-ESRGAN 4x+" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Contains("R-ESRGAN 4x+", unknown.GetProperty("detail").GetString(), StringComparison.Ordinal);
        (await App.PostAsync("/sdapi/v1/extra-single-image", new { image = "bm90IGFuIGltYWdl", upscaler_1 = "Lanczos" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
    }

    /// <summary>The rest of A1111 1.10's routes that clients call at start: A1111's shapes, empty lists for what Atelier does not have, never a 404.</summary>
    [Fact]
    public async Task A1111_ListingAndHousekeepingRoutes_AnswerA1111sShapes()
    {
        foreach (var none in new[] { "latent-upscale-modes", "hypernetworks", "face-restorers", "realesrgan-models", "prompt-styles", "script-info", "extensions", "sd-vae" })
        {
            var listed = await App.GetAsync("/sdapi/v1/" + none);
            Assert.True(listed.Status == HttpStatusCode.OK && listed.Json.ValueKind == JsonValueKind.Array, $"{none}: {listed.Status} {listed.Text}");
        }

        Assert.Equal(["None", "Lanczos", "Nearest"], (await App.GetAsync("/sdapi/v1/upscalers")).Json.EnumerateArray().Select(u => u.GetProperty("name").GetString()));
        var scripts = (await App.GetAsync("/sdapi/v1/scripts")).Json;
        Assert.Equal((JsonValueKind.Array, JsonValueKind.Array), (scripts.GetProperty("txt2img").ValueKind, scripts.GetProperty("img2img").ValueKind));
        Assert.True((await App.GetAsync("/sdapi/v1/cmd-flags")).Json.GetProperty("api").GetBoolean());
        var memory = (await App.GetAsync("/sdapi/v1/memory")).Json;
        Assert.True(memory.GetProperty("ram").GetProperty("total").GetInt64() > 0);
        Assert.Equal(JsonValueKind.String, memory.GetProperty("cuda").GetProperty("error").ValueKind);
        var interrogate = await App.PostAsync("/sdapi/v1/interrogate", new { image = "", model = "clip" });
        Assert.Equal((HttpStatusCode.NotFound, "Model not found"), (interrogate.Status, interrogate.Json.GetProperty("detail").GetString()));
        foreach (var post in new[] { "skip", "refresh-checkpoints", "refresh-vae", "refresh-embeddings", "refresh-loras", "unload-checkpoint", "reload-checkpoint" })
        {
            Assert.Equal(HttpStatusCode.OK, (await App.PostAsync("/sdapi/v1/" + post)).Status);
        }

        Assert.Equal(HttpStatusCode.OK, (await Host.Client.GetAsync("/internal/ping")).Status);
        // Still the caller's API: without a credential, the envelope's 401.
        (await Host.Client.GetAsync("/sdapi/v1/hypernetworks")).Error(ErrorCatalog.p_common_apitokenrequired, 401);
    }
}

/// <summary>AUTOMATIC1111's options per caller (issue 17, item 2), on a server whose worker is the test (manual leases).</summary>
public class CallerOptionsTests
{
    [Fact]
    public async Task Options_EveryA1111Key_ArePerCredential_RoundTrip_RefuseUnknownKeys_AndGoWithTheCallersJobs()
    {
        var (host, world, worker) = await Worker.WorkerProtocolTests.StartAsync();
        await using var owned = host;
        var app = world.AppOf(host);
        var defaults = (await app.GetAsync("/sdapi/v1/options")).Json;
        Assert.True(defaults.EnumerateObject().Count() > 200, $"{defaults.EnumerateObject().Count()} keys");
        Assert.Equal(("png", 1, 0), (defaults.GetProperty("samples_format").GetString(), defaults.GetProperty("CLIP_stop_at_last_layers").GetInt32(),
            defaults.GetProperty("eta_noise_seed_delta").GetInt32()));
        Assert.StartsWith("atelier-demo", defaults.GetProperty("sd_model_checkpoint").GetString(), StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.OK, (await app.PostAsync("/sdapi/v1/options", new Dictionary<string, object> { ["CLIP_stop_at_last_layers"] = 2, ["eta_noise_seed_delta"] = 31337, ["jpeg_quality"] = 80 })).Status);
        var mine = (await app.GetAsync("/sdapi/v1/options")).Json;
        Assert.Equal((2, 31337, 80), (mine.GetProperty("CLIP_stop_at_last_layers").GetInt32(), mine.GetProperty("eta_noise_seed_delta").GetInt32(), mine.GetProperty("jpeg_quality").GetInt32()));

        // Unknown keys and values of the wrong kind are refused, and nothing of that request is kept.
        var unknown = (await app.PostAsync("/sdapi/v1/options", new { jpeg_quality = 10, not_an_a1111_option = 1 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Contains("not_an_a1111_option", unknown.GetProperty("detail").GetString(), StringComparison.Ordinal);
        (await app.PostAsync("/sdapi/v1/options", new Dictionary<string, object> { ["CLIP_stop_at_last_layers"] = "two" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal(80, (await app.GetAsync("/sdapi/v1/options")).Json.GetProperty("jpeg_quality").GetInt32());

        // Another credential of the same tenant has its own (the defaults).
        var (_, other) = await Scenario.NewAppAsync(host, world, "other-app");
        Assert.Equal(1, (await other.GetAsync("/sdapi/v1/options")).Json.GetProperty("CLIP_stop_at_last_layers").GetInt32());

        // The caller's options go with its jobs as override_settings; keys the request sets itself win.
        await Worker.WorkerProtocolTests.SubmitAsync(host, world, input: new { prompt = "with options", steps = 2, override_settings = new { jpeg_quality = 95 } });
        var leased = (await WorkerProtocol.LeaseAsync(worker)).Ok();
        var overrides = leased.GetProperty("request").GetProperty("override_settings");
        Assert.Equal((2, 31337, 95), (overrides.GetProperty("CLIP_stop_at_last_layers").GetInt32(), overrides.GetProperty("eta_noise_seed_delta").GetInt32(),
            overrides.GetProperty("jpeg_quality").GetInt32()));
        Assert.False(overrides.TryGetProperty("samples_format", out var unset), unset.ToString()); // defaults are not sent, only what the caller set
    }
}
