using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atelier.Engine.Images;
using Atelier.Worker.A1111;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Worker.Tests;

/// <summary><c>atelier engine</c> on a free loopback port, over a models folder that starts empty (so it builds the demo model).</summary>
public sealed class EngineFixture : IAsyncLifetime
{
    private WebApplication _app = null!;
    public HttpClient Http { get; private set; } = null!;
    public string Models { get; } = Directory.CreateTempSubdirectory("atelier-engine-").FullName;

    public async ValueTask InitializeAsync()
    {
        _app = EngineServer.Build(["--Atelier:Engine:Urls=http://127.0.0.1:0", $"--Atelier:Engine:ModelsDirectory={Models}", "--Logging:LogLevel:Default=Warning"]);
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(60) };
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(Models, recursive: true);
    }
}

public class EngineServerTests(EngineFixture engine) : IClassFixture<EngineFixture>
{
    private async Task<(HttpStatusCode Status, JsonElement Body)> Post(string path, object body)
    {
        using var resp = await engine.Http.PostAsJsonAsync(path, body);
        var text = await resp.Content.ReadAsStringAsync();
        return (resp.StatusCode, JsonDocument.Parse(text).RootElement);
    }

    /// <summary>A1111 1.10's listing and housekeeping routes on <c>atelier engine</c>: A1111's shapes, empty lists for what it does not have.</summary>
    [Fact]
    public async Task A1111_ListingAndHousekeepingRoutes_AnswerA1111sShapes()
    {
        foreach (var none in new[] { "latent-upscale-modes", "hypernetworks", "face-restorers", "realesrgan-models", "prompt-styles", "script-info", "extensions", "sd-vae" })
        {
            using var resp = await engine.Http.GetAsync("/sdapi/v1/" + none);
            Assert.True(resp.IsSuccessStatusCode, $"{none}: {(int)resp.StatusCode}");
            Assert.Equal(JsonValueKind.Array, JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement.ValueKind);
        }

        Assert.Equal("None", (await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/upscalers"))[0].GetProperty("name").GetString());
        var image = (await Post("/sdapi/v1/txt2img", new { prompt = "a blue box", steps = 2, width = 64, height = 64 })).Body.GetProperty("images")[0].GetString();
        var (upscaled, extra) = await Post("/sdapi/v1/extra-single-image", new { image, upscaling_resize = 1.5, upscaler_1 = "Lanczos" });
        Assert.Equal(HttpStatusCode.OK, upscaled);
        Assert.Equal((96, 96), PngDecoder.Decode(Convert.FromBase64String(extra.GetProperty("image").GetString()!)) is var (_, ew, eh) ? (ew, eh) : default);
        var (refused, why) = await Post("/sdapi/v1/extra-single-image", new { image, upscaler_1 = "SwinIR 4x" });
        Assert.Equal((HttpStatusCode.UnprocessableEntity, "could not find upscaler named SwinIR 4x"), (refused, why.GetProperty("detail").GetString()));
        Assert.Equal(JsonValueKind.Array, (await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/scripts")).GetProperty("txt2img").ValueKind);
        var flags = await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/cmd-flags");
        Assert.True(flags.GetProperty("api").GetBoolean());
        Assert.True((await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/memory")).GetProperty("ram").GetProperty("total").GetInt64() > 0);
        var (status, body) = await Post("/sdapi/v1/interrogate", new { image = "", model = "clip" });
        Assert.Equal((HttpStatusCode.NotFound, "Model not found"), (status, body.GetProperty("detail").GetString()));
        foreach (var post in new[] { "skip", "refresh-checkpoints", "refresh-vae", "refresh-embeddings", "refresh-loras", "unload-checkpoint", "reload-checkpoint" })
        {
            Assert.Equal(HttpStatusCode.OK, (await Post("/sdapi/v1/" + post, new { })).Status);
        }

        using var ping = await engine.Http.GetAsync("/internal/ping");
        Assert.Equal(HttpStatusCode.OK, ping.StatusCode);
    }

    [Fact]
    public async Task OverrideSettings_ItDoesNotRead_AreListedAsUnsupported()
    {
        var (status, body) = await Post("/sdapi/v1/txt2img", new Dictionary<string, object>
        {
            ["prompt"] = "a red ball", ["steps"] = 2, ["width"] = 64, ["height"] = 64,
            ["override_settings"] = new Dictionary<string, object> { ["CLIP_stop_at_last_layers"] = 2, ["samples_format"] = "png", ["sd_model_checkpoint"] = "atelier-demo" },
        });
        Assert.Equal(HttpStatusCode.OK, status);
        var unsupported = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement.GetProperty("unsupported").EnumerateArray().Select(u => u.GetString()).ToList();
        Assert.Equal(["override_settings.CLIP_stop_at_last_layers"], unsupported);
    }

    [Fact]
    public async Task Docs_ServeTheApiReference_AndItsDescriptionListsTheA1111Routes()
    {
        using var page = await engine.Http.GetAsync("/docs");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var description = await engine.Http.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        var paths = description.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/sdapi/v1/txt2img", paths);
        Assert.Contains("/sdapi/v1/extra-single-image", paths);
        Assert.Contains("/internal/ping", paths);
    }

    [Fact]
    public async Task AModelThatDoesNotLoad_IsA1111sErrorAnswer_NotAnEmpty500()
    {
        var broken = Path.Combine(engine.Models, "broken-model");
        Atelier.Engine.Onnx.TinyPipeline.Write(broken);
        await File.WriteAllTextAsync(Path.Combine(broken, "unet", "model.onnx"), "not an onnx graph");
        using (await engine.Http.PostAsync("/sdapi/v1/refresh-checkpoints", null))
        {
        }

        try
        {
            var (status, body) = await Post("/sdapi/v1/txt2img", new Dictionary<string, object>
            {
                ["prompt"] = "x", ["steps"] = 2, ["width"] = 64, ["height"] = 64, ["override_settings"] = new Dictionary<string, object> { ["sd_model_checkpoint"] = "broken-model" },
            });
            Assert.Equal(HttpStatusCode.InternalServerError, status);
            Assert.False(string.IsNullOrEmpty(body.GetProperty("error").GetString()));
            Assert.False(string.IsNullOrEmpty(body.GetProperty("errors").GetString()));
        }
        finally
        {
            Directory.Delete(broken, recursive: true);
            using (await engine.Http.PostAsync("/sdapi/v1/refresh-checkpoints", null))
            {
            }
        }
    }

    [Fact]
    public async Task Healthz_AnswersWhileTheEngineRuns()
    {
        using var resp = await engine.Http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal("Healthy", await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Txt2Img_ReturnsA1111Shapes()
    {
        var (status, body) = await Post("/sdapi/v1/txt2img", new { prompt = "a red fox", steps = 8, width = 64, height = 64, seed = 7, batch_size = 2 });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, body.GetProperty("images").GetArrayLength());
        var png = Convert.FromBase64String(body.GetProperty("images")[0].GetString()!);
        Assert.StartsWith("a red fox\nSteps: 8, Sampler: Euler,", Png.ReadText(png)["parameters"], StringComparison.Ordinal);
        Assert.Equal("a red fox", body.GetProperty("parameters").GetProperty("prompt").GetString());
        var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
        Assert.Equal([7L, 8L], info.GetProperty("all_seeds").EnumerateArray().Select(s => s.GetInt64()));
        Assert.Equal(10, info.GetProperty("sd_model_hash").GetString()!.Length);
        Assert.Equal(2, info.GetProperty("infotexts").GetArrayLength());
    }

    [Fact]
    public async Task Txt2Img_SameSeedSameBytes()
    {
        var a = (await Post("/sdapi/v1/txt2img", new { prompt = "cat", steps = 4, width = 64, height = 64, seed = 3 })).Body.GetProperty("images")[0].GetString();
        var b = (await Post("/sdapi/v1/txt2img", new { prompt = "cat", steps = 4, width = 64, height = 64, seed = 3 })).Body.GetProperty("images")[0].GetString();
        Assert.Equal(a, b);
    }

    [Fact]
    public async Task UnknownSampler_Is404SamplerNotFound()
    {
        var (status, body) = await Post("/sdapi/v1/txt2img", new { prompt = "x", sampler_name = "Nope" });
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("Sampler not found", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task UnsupportedFeatures_AreAcceptedAndReported()
    {
        var (status, body) = await Post("/sdapi/v1/txt2img", new
        {
            prompt = "x", steps = 2, width = 64, height = 64, restore_faces = true, script_name = "x/y/z plot",
            sampler_name = "DPM++ 2M Karras", override_settings = new { sd_model_checkpoint = "nope.safetensors" },
        });
        Assert.Equal(HttpStatusCode.OK, status);
        var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
        Assert.Equal(["restore_faces", "script_name"], info.GetProperty("unsupported").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("Karras", info.GetProperty("scheduler").GetString());
        Assert.Contains("nope.safetensors", info.GetProperty("warnings")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SamplesFormat_FromOverrideSettingsOrOptions_JpegAndWebpWithTheInfotextInExif()
    {
        var (ok, jpg) = await Post("/sdapi/v1/txt2img", new { prompt = "a lighthouse 灯塔", steps = 2, width = 64, height = 64, seed = 5,
            override_settings = new Dictionary<string, object> { ["samples_format"] = "jpeg", ["jpeg_quality"] = 70 } });
        Assert.Equal(HttpStatusCode.OK, ok);
        var jpeg = Convert.FromBase64String(jpg.GetProperty("images")[0].GetString()!);
        Assert.Equal([0xFF, 0xD8], jpeg[..2]);
        var (_, read) = await Post("/sdapi/v1/png-info", new { image = Convert.ToBase64String(jpeg) });
        Assert.Equal("a lighthouse 灯塔", read.GetProperty("parameters").GetProperty("Prompt").GetString());
        Assert.DoesNotContain("override_settings.samples_format", jpg.GetProperty("info").GetString(), StringComparison.Ordinal);

        try
        {
            Assert.Equal(HttpStatusCode.OK, (await engine.Http.PostAsJsonAsync("/sdapi/v1/options", new Dictionary<string, object> { ["samples_format"] = "webp" })).StatusCode);
            var (_, webp) = await Post("/sdapi/v1/txt2img", new { prompt = "a kite", steps = 2, width = 64, height = 64 });
            var bytes = Convert.FromBase64String(webp.GetProperty("images")[0].GetString()!);
            Assert.Equal("WEBP", System.Text.Encoding.ASCII.GetString(bytes, 8, 4));
            Assert.Equal("a kite", SampleFormats.ReadUserComment(bytes)?.Split('\n')[0]);

            // A format A1111 could not encode: the images stay PNG, and the answer says why.
            Assert.Equal(HttpStatusCode.OK, (await engine.Http.PostAsJsonAsync("/sdapi/v1/options", new Dictionary<string, object> { ["samples_format"] = "gif" })).StatusCode);
            var (_, gif) = await Post("/sdapi/v1/txt2img", new { prompt = "a kite", steps = 2, width = 64, height = 64 });
            Assert.Equal(0x89, Convert.FromBase64String(gif.GetProperty("images")[0].GetString()!)[0]);
            var warnings = JsonDocument.Parse(gif.GetProperty("info").GetString()!).RootElement.GetProperty("warnings");
            Assert.Contains(warnings.EnumerateArray(), w => w.GetString()!.StartsWith("samples_format 'gif' is not png", StringComparison.Ordinal));
        }
        finally
        {
            await engine.Http.PostAsJsonAsync("/sdapi/v1/options", new Dictionary<string, object> { ["samples_format"] = "png" });
        }
    }

    [Fact]
    public async Task HiresFix_MakesTheBiggerPicture_AndAnUnknownUpscalerIsA1111sError()
    {
        var (ok, body) = await Post("/sdapi/v1/txt2img", new
        {
            prompt = "a tower", steps = 3, width = 64, height = 64, enable_hr = true, hr_scale = 2, hr_upscaler = "Latent", hr_second_pass_steps = 2,
            denoising_strength = 0.6,
        });
        Assert.Equal(HttpStatusCode.OK, ok);
        var png = Convert.FromBase64String(body.GetProperty("images")[0].GetString()!);
        Assert.Equal((128, 128), (PngDecoder.Decode(png).Width, PngDecoder.Decode(png).Height));
        using var info = JsonDocument.Parse(body.GetProperty("info").GetString()!);
        Assert.DoesNotContain(info.RootElement.GetProperty("unsupported").EnumerateArray(), u => u.GetString() == "enable_hr");
        Assert.Contains("Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent", info.RootElement.GetProperty("infotexts")[0].GetString(), StringComparison.Ordinal);

        var (refused, why) = await Post("/sdapi/v1/txt2img", new { prompt = "a tower", steps = 2, width = 64, height = 64, enable_hr = true, hr_upscaler = "4x-UltraSharp" });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused);
        Assert.StartsWith("could not find upscaler named 4x-UltraSharp", why.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Img2Img_NeedsAnInitImage_AndUsesIt()
    {
        var (missing, body) = await Post("/sdapi/v1/img2img", new { prompt = "x" });
        Assert.Equal(HttpStatusCode.NotFound, missing);
        Assert.Equal("Init image not found", body.GetProperty("detail").GetString());
        var rgb = Enumerable.Range(0, 64 * 64 * 3).Select(i => (byte)(i % 251)).ToArray();
        var init = "data:image/png;base64," + Convert.ToBase64String(Png.Encode(rgb, 64, 64));
        var (ok, result) = await Post("/sdapi/v1/img2img", new { prompt = "x", steps = 8, width = 64, height = 64, init_images = new[] { init }, denoising_strength = 0.5 });
        Assert.Equal(HttpStatusCode.OK, ok);
        Assert.Contains("Denoising strength: 0.5", JsonDocument.Parse(result.GetProperty("info").GetString()!).RootElement.GetProperty("infotexts")[0].GetString(), StringComparison.Ordinal);

        // A picture of another shape, placed by resize_mode; a mode A1111 does not have is refused with its detail.
        var wide = "data:image/png;base64," + Convert.ToBase64String(Png.Encode([.. Enumerable.Range(0, 96 * 48 * 3).Select(i => (byte)(i % 253))], 96, 48));
        foreach (var mode in new[] { 0, 1, 2, 3 })
        {
            var (placed, _) = await Post("/sdapi/v1/img2img", new { prompt = "x", steps = 2, width = 64, height = 64, init_images = new[] { wide }, resize_mode = mode });
            Assert.Equal(HttpStatusCode.OK, placed);
        }

        var (refused, why) = await Post("/sdapi/v1/img2img", new { prompt = "x", steps = 2, width = 64, height = 64, init_images = new[] { wide }, resize_mode = 7 });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused);
        Assert.StartsWith("resize_mode must be 0 (just resize)", why.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Img2Img_SdUpscaleScript_UpscalesTileByTile_AndItsArgumentsAreA1111sOrRefused()
    {
        Assert.Equal(["sd upscale"], (await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/scripts")).GetProperty("img2img").EnumerateArray().Select(s => s.GetString()));
        var info = (await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/script-info"))[0];
        Assert.Equal(["Tile overlap", "Upscaler", "Scale Factor"], info.GetProperty("args").EnumerateArray().Skip(1).Select(a => a.GetProperty("label").GetString()));
        var wide = "data:image/png;base64," + Convert.ToBase64String(Png.Encode([.. Enumerable.Range(0, 96 * 48 * 3).Select(i => (byte)(i % 253))], 96, 48));
        // 96×48 × 1.5 = 144×72, in 64×64 tiles overlapping by 8: ⌈136/56⌉ = 3 columns, ⌈64/56⌉ = 2 rows; the name "nearest" as the upscaler.
        var (ok, result) = await Post("/sdapi/v1/img2img", new
        {
            prompt = "x", steps = 2, width = 64, height = 64, seed = 5, denoising_strength = 0.3, init_images = new[] { wide },
            script_name = "sd upscale", script_args = new object[] { "", 8, "nearest", 1.5 },
        });
        Assert.Equal(HttpStatusCode.OK, ok);
        var picture = PngDecoder.Decode(Convert.FromBase64String(result.GetProperty("images")[0].GetString()!));
        Assert.Equal((144, 72), (picture.Width, picture.Height));
        var infotext = JsonDocument.Parse(result.GetProperty("info").GetString()!).RootElement.GetProperty("infotexts")[0].GetString();
        Assert.Contains("SD upscale overlap: 8, SD upscale upscaler: Nearest", infotext, StringComparison.Ordinal);
        Assert.DoesNotContain("script_name", result.GetProperty("info").GetString(), StringComparison.Ordinal); // it ran: not listed as unsupported

        var (refused, why) = await Post("/sdapi/v1/img2img", new { prompt = "x", width = 64, height = 64, init_images = new[] { wide }, script_name = "SD upscale", script_args = new object[] { "", 8, 12 } });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused);
        Assert.StartsWith("sd upscale: could not find upscaler 12", why.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lora_FromTheModelsLoraFolder_IsListed_AndMergedByThePromptsSyntax_AndClipSkipIsApplied()
    {
        // An engine of its own: the tiny model beside the demo, and a LoRA for it in models/Lora.
        var models = Directory.CreateTempSubdirectory("atelier-engine-lora-").FullName;
        Engine.Onnx.TinyPipeline.Write(Path.Combine(models, "tiny"));
        Directory.CreateDirectory(Path.Combine(models, "Lora"));
        Engine.Onnx.TinyPipeline.WriteLora(Path.Combine(models, "Lora", "foxy.safetensors"));
        Directory.CreateDirectory(Path.Combine(models, "embeddings"));
        Engine.Lora.Embedding.Write(Path.Combine(models, "embeddings", "foxstyle.safetensors"), [.. Enumerable.Range(0, 16).Select(i => (float)i / 4)], 8);
        Engine.Onnx.TinyPipeline.WriteUpscaler(Path.Combine(models, "ESRGAN", "tinyscale.onnx"));
        var app = EngineServer.Build(["--Atelier:Engine:Urls=http://127.0.0.1:0", $"--Atelier:Engine:ModelsDirectory={models}", "--Logging:LogLevel:Default=Warning"]);
        await app.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()) };
            var loras = await http.GetFromJsonAsync<JsonElement>("/sdapi/v1/loras");
            var foxy = Assert.Single(loras.EnumerateArray());
            Assert.Equal("foxy", foxy.GetProperty("name").GetString());
            Assert.Equal("2", foxy.GetProperty("metadata").GetProperty("ss_network_dim").GetString());

            async Task<(byte[] Rgb, JsonElement Info)> Draw(string prompt, int clipSkip = 1)
            {
                using var resp = await http.PostAsJsonAsync("/sdapi/v1/txt2img", new
                {
                    prompt, steps = 3, width = 64, height = 64, seed = 4, sampler_name = "Euler",
                    override_settings = new Dictionary<string, object> { ["sd_model_checkpoint"] = "tiny", ["CLIP_stop_at_last_layers"] = clipSkip },
                });
                Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
                var body = await resp.Content.ReadFromJsonAsync<JsonElement>();
                return (PngDecoder.Decode(Convert.FromBase64String(body.GetProperty("images")[0].GetString()!)).Rgb,
                    JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement.Clone());
            }

            var (plain, _) = await Draw("a fox");
            var (tinted, info) = await Draw("a fox <lora:foxy:1>");
            var (missing, missingInfo) = await Draw("a fox <lora:nobody:1>");
            Assert.NotEqual(plain, tinted);
            Assert.Equal(plain, missing); // a LoRA with no file is left out, as A1111 leaves it out
            Assert.Contains("Lora hashes: \"foxy: ", info.GetProperty("infotexts")[0].GetString(), StringComparison.Ordinal);
            Assert.Contains(info.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.StartsWith("LoRA modules this model has no weight for, not applied: 1", StringComparison.Ordinal));
            Assert.Contains(missingInfo.GetProperty("warnings").EnumerateArray(), w => w.GetString() == "Networks not found: nobody");

            // An embedding from models/embeddings, listed as A1111 lists them, used where the prompt names it.
            var embeddings = await http.GetFromJsonAsync<JsonElement>("/sdapi/v1/embeddings");
            Assert.Equal(2, embeddings.GetProperty("loaded").GetProperty("foxstyle").GetProperty("vectors").GetInt32());
            Assert.Equal(8, embeddings.GetProperty("loaded").GetProperty("foxstyle").GetProperty("shape").GetInt32());
            var (styled, styledInfo) = await Draw("a foxstyle");
            Assert.NotEqual((await Draw("a foxstylex")).Rgb, styled);
            Assert.Contains("TI hashes: \"foxstyle: ", styledInfo.GetProperty("infotexts")[0].GetString(), StringComparison.Ordinal);

            // An ONNX upscaler from models/ESRGAN: listed beside A1111's built-in ones, used by extras and the hires fix.
            var upscalers = await http.GetFromJsonAsync<JsonElement>("/sdapi/v1/upscalers");
            Assert.Contains(upscalers.EnumerateArray(), u => u.GetProperty("name").GetString() == "tinyscale");
            using var extras = await http.PostAsJsonAsync("/sdapi/v1/extra-single-image", new
            {
                image = Convert.ToBase64String(Png.Encode([.. Enumerable.Repeat((byte)200, 8 * 8 * 3)], 8, 8)), upscaler_1 = "tinyscale", upscaling_resize = 2,
            });
            var upscaled = PngDecoder.Decode(Convert.FromBase64String((await extras.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("image").GetString()!));
            Assert.Equal((16, 100), (upscaled.Width, (int)upscaled.Rgb[0])); // each pixel a 2×2 block at half its value
            using var hires = await http.PostAsJsonAsync("/sdapi/v1/txt2img", new
            {
                prompt = "a fox", steps = 2, width = 64, height = 64, enable_hr = true, hr_scale = 2, hr_upscaler = "tinyscale", denoising_strength = 0.5,
                override_settings = new Dictionary<string, object> { ["sd_model_checkpoint"] = "tiny" },
            });
            Assert.Equal(HttpStatusCode.OK, hires.StatusCode);
            Assert.Contains("Hires upscaler: tinyscale", (await hires.Content.ReadAsStringAsync()), StringComparison.Ordinal);

            // Clip skip: applied on the tiny model (its text encoder names its layers).
            var (skipped, skippedInfo) = await Draw("a fox", clipSkip: 2);
            Assert.NotEqual(plain, skipped);
            Assert.Contains("Clip skip: 2", skippedInfo.GetProperty("infotexts")[0].GetString(), StringComparison.Ordinal);
            Assert.DoesNotContain(skippedInfo.GetProperty("unsupported").EnumerateArray(), u => u.GetString()!.Contains("CLIP", StringComparison.Ordinal));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            Directory.Delete(models, recursive: true);
        }
    }

    [Fact]
    public async Task FieldsItDoesNotApply_AreNamedInInfo_AndExtraNetworksAreTakenOutOfThePrompt()
    {
        var (ok, body) = await Post("/sdapi/v1/txt2img", new
        {
            prompt = "a fox <lora:foxy:0.7>", steps = 2, width = 64, height = 64, s_churn = 0.5, s_tmin = 0, eta = 0.3, styles = new[] { "Cinematic" },
            include_init_images = false, override_settings = new Dictionary<string, object> { ["CLIP_stop_at_last_layers"] = 2 },
        });
        Assert.Equal(HttpStatusCode.OK, ok);
        using var info = JsonDocument.Parse(body.GetProperty("info").GetString()!);
        var unsupported = info.RootElement.GetProperty("unsupported").EnumerateArray().Select(u => u.GetString()).ToList();
        // s_tmin 0 and include_init_images false ask for nothing; the demo's text encoder does not show its layers, so no clip skip.
        Assert.Equal(["styles", "s_churn", "eta", "override_settings.CLIP_stop_at_last_layers"], unsupported);
        Assert.Contains(info.RootElement.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.StartsWith("CLIP_stop_at_last_layers 2 is not applied", StringComparison.Ordinal));
        Assert.Contains(info.RootElement.GetProperty("warnings").EnumerateArray(), w => w.GetString() == "Networks not found: foxy");
        Assert.StartsWith("a fox <lora:foxy:0.7>\n", info.RootElement.GetProperty("infotexts")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Img2Img_WithAMask_Inpaints_OnlyMaskedByDefault_AsA1111()
    {
        // A 96×80 picture, its top-left quarter red and the rest grey; a white 16×16 square of a black mask masks part of the grey.
        var rgb = new byte[96 * 80 * 3];
        var maskRgb = new byte[96 * 80 * 3];
        for (var y = 0; y < 80; y++)
        {
            for (var x = 0; x < 96; x++)
            {
                var i = ((y * 96) + x) * 3;
                (rgb[i], rgb[i + 1], rgb[i + 2]) = x < 48 && y < 40 ? ((byte)220, (byte)20, (byte)20) : ((byte)128, (byte)128, (byte)128);
                var masked = x is >= 60 and < 76 && y is >= 50 and < 66;
                maskRgb[i] = maskRgb[i + 1] = maskRgb[i + 2] = masked ? (byte)255 : (byte)0;
            }
        }

        var init = Convert.ToBase64String(Png.Encode(rgb, 96, 80));
        var mask = Convert.ToBase64String(Png.Encode(maskRgb, 96, 80));
        // A1111's API defaults: inpaint_full_res on (only masked), mask_blur 4, fill; a client's 0/1 for the flags is read as A1111 reads it.
        var (ok, body) = await Post("/sdapi/v1/img2img", new
        {
            prompt = "a cat", steps = 4, width = 64, height = 64, init_images = new[] { init }, mask, inpaint_full_res_padding = 4, inpainting_mask_invert = 0,
        });
        Assert.Equal(HttpStatusCode.OK, ok);
        var picture = PngDecoder.Decode(Convert.FromBase64String(body.GetProperty("images")[0].GetString()!));
        Assert.Equal((96, 80), (picture.Width, picture.Height)); // only masked: put back into the original
        Assert.Equal([220, 20, 20], picture.Rgb.AsSpan(((5 * 96) + 5) * 3, 3).ToArray());
        Assert.Equal([128, 128, 128], picture.Rgb.AsSpan(((75 * 96) + 90) * 3, 3).ToArray());
        using var info = JsonDocument.Parse(body.GetProperty("info").GetString()!);
        Assert.DoesNotContain(info.RootElement.GetProperty("unsupported").EnumerateArray(), u => u.GetString() == "mask");
        Assert.Contains("Mask blur: 4, Masked content: fill, Inpaint area: Only masked, Masked area padding: 4", info.RootElement.GetProperty("infotexts")[0].GetString(),
            StringComparison.Ordinal);

        // The whole picture (inpaint_full_res as 0), inverted: the job's size.
        var (whole, wholeBody) = await Post("/sdapi/v1/img2img", new
        {
            prompt = "a cat", steps = 2, width = 64, height = 64, init_images = new[] { init }, mask, inpaint_full_res = 0, inpainting_mask_invert = 1, inpainting_fill = 2,
        });
        Assert.Equal(HttpStatusCode.OK, whole);
        Assert.Equal(64, PngDecoder.Decode(Convert.FromBase64String(wholeBody.GetProperty("images")[0].GetString()!)).Width);
        Assert.Contains("Mask mode: Inpaint not masked, Masked content: latent noise", JsonDocument.Parse(wholeBody.GetProperty("info").GetString()!)
            .RootElement.GetProperty("infotexts")[0].GetString(), StringComparison.Ordinal);

        // A blank mask with only masked: A1111 runs a plain img2img and says why.
        var blank = Convert.ToBase64String(Png.Encode(new byte[96 * 80 * 3], 96, 80));
        var (plain, plainBody) = await Post("/sdapi/v1/img2img", new { prompt = "a cat", steps = 2, width = 64, height = 64, init_images = new[] { init }, mask = blank });
        Assert.Equal(HttpStatusCode.OK, plain);
        Assert.Contains(JsonDocument.Parse(plainBody.GetProperty("info").GetString()!).RootElement.GetProperty("warnings").EnumerateArray(),
            w => w.GetString()!.StartsWith("Unable to perform \"Inpaint Only mask\"", StringComparison.Ordinal));

        // Out of range, and a mask that is not a picture: A1111's 422 with a detail.
        var (refused, why) = await Post("/sdapi/v1/img2img", new { prompt = "x", steps = 2, width = 64, height = 64, init_images = new[] { init }, mask, inpainting_fill = 9 });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused);
        Assert.StartsWith("inpainting_fill must be 0 (fill)", why.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var (broken, _) = await Post("/sdapi/v1/img2img", new { prompt = "x", steps = 2, width = 64, height = 64, init_images = new[] { init }, mask = Convert.ToBase64String("not a picture"u8.ToArray()) });
        Assert.Equal(HttpStatusCode.UnprocessableEntity, broken);
    }

    [Fact]
    public async Task Listings_ModelsSamplersSchedulersOptions()
    {
        var models = await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/sd-models");
        var demo = Assert.Single(models.EnumerateArray());
        Assert.Equal("atelier-demo", demo.GetProperty("model_name").GetString());
        Assert.Equal($"atelier-demo [{demo.GetProperty("hash").GetString()}]", demo.GetProperty("title").GetString());
        var samplers = await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/samplers");
        Assert.Contains(samplers.EnumerateArray(), s => s.GetProperty("name").GetString() == "DPM++ 2M");
        var schedulers = await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/schedulers");
        Assert.Contains(schedulers.EnumerateArray(), s => s.GetProperty("label").GetString() == "Karras");
        var options = await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/options");
        Assert.Equal(demo.GetProperty("title").GetString(), options.GetProperty("sd_model_checkpoint").GetString());
        using var set = await engine.Http.PostAsJsonAsync("/sdapi/v1/options", new { samples_format = "png", jpeg_quality = 80 });
        Assert.Equal(80, (await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/options")).GetProperty("jpeg_quality").GetInt32());
    }

    [Fact]
    public async Task PngInfo_ParsesOurOwnImages()
    {
        var image = (await Post("/sdapi/v1/txt2img", new { prompt = "castle", negative_prompt = "fog", steps = 3, width = 64, height = 64, seed = 5 })).Body
            .GetProperty("images")[0].GetString();
        var (status, info) = await Post("/sdapi/v1/png-info", new { image });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("castle", info.GetProperty("parameters").GetProperty("Prompt").GetString());
        Assert.Equal("fog", info.GetProperty("parameters").GetProperty("Negative prompt").GetString());
        Assert.Equal("5", info.GetProperty("parameters").GetProperty("Seed").GetString());
    }

    [Fact]
    public async Task Interrupt_StopsTheRunningJob_AndProgressIsPerTask()
    {
        var run = Post("/sdapi/v1/txt2img", new { prompt = "long", steps = 100, width = 256, height = 256, batch_size = 16, n_iter = 50, force_task_id = "task-int" });
        // On a loaded machine the first steps of a 16-image batch can take seconds.
        var progress = await Atelier.Server.Tests.Infrastructure.Eventually.ValueAsync(
            () => engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/progress?id_task=task-int&skip_current_image=false"),
            p => p.GetProperty("state").GetProperty("sampling_step").GetInt32() > 2, "the first steps ran", every: TimeSpan.FromMilliseconds(20));

        Assert.True(progress.GetProperty("progress").GetDouble() > 0);
        Assert.Equal(100, progress.GetProperty("state").GetProperty("sampling_steps").GetInt32());
        Assert.Equal(800, progress.GetProperty("state").GetProperty("job_count").GetInt32());
        Assert.NotNull(progress.GetProperty("current_image").GetString());
        using (await engine.Http.PostAsync("/sdapi/v1/interrupt", null))
        {
        }

        var (status, body) = await run;
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(0, body.GetProperty("images").GetArrayLength());
        var after = await engine.Http.GetFromJsonAsync<JsonElement>("/sdapi/v1/progress?id_task=task-int");
        Assert.True(after.GetProperty("state").GetProperty("interrupted").GetBoolean());
    }
}
