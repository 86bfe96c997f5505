using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Worker.A1111;
using Atelier.Worker.Adapters;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Worker.Tests;

/// <summary>SDXL and its refiner through <c>atelier engine</c>'s A1111 API and through the worker's built-in adapter.</summary>
public sealed class XlEngineTests : IAsyncDisposable
{
    private readonly string _models = Directory.CreateTempSubdirectory("atelier-xl-engine-").FullName;

    public XlEngineTests()
    {
        TinyPipeline.WriteXl(Path.Combine(_models, "tiny-xl"));
        TinyPipeline.WriteXlRefiner(Path.Combine(_models, "tiny-refiner"));
    }

    [Fact]
    public async Task Txt2Img_OnAnSdxlModel_WithTheRefiner_AsA1111TakesThem()
    {
        await using var app = EngineServer.Build(["--Atelier:Engine:Urls=http://127.0.0.1:0", $"--Atelier:Engine:ModelsDirectory={_models}", "--Logging:LogLevel:Default=Warning"]);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()) };
        async Task<(HttpStatusCode, JsonElement)> Post(object body)
        {
            using var resp = await http.PostAsJsonAsync("/sdapi/v1/txt2img", body);
            return (resp.StatusCode, JsonDocument.Parse(await resp.Content.ReadAsStringAsync()).RootElement);
        }

        var models = (await http.GetFromJsonAsync<JsonElement>("/sdapi/v1/sd-models")).EnumerateArray().Select(m => m.GetProperty("model_name").GetString()).ToList();
        Assert.Contains("tiny-xl", models);
        Assert.Contains("tiny-refiner", models);
        var (ok, body) = await Post(new
        {
            prompt = "a red fox", steps = 4, width = 64, height = 64, seed = 9, override_settings = new { sd_model_checkpoint = "tiny-xl" },
            refiner_checkpoint = "tiny-refiner", refiner_switch_at = 0.5,
        });
        Assert.Equal(HttpStatusCode.OK, ok);
        var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
        Assert.Contains("Model: tiny-xl, ", info.GetProperty("infotexts")[0].GetString(), StringComparison.Ordinal);
        Assert.Contains("Refiner: tiny-refiner [", info.GetProperty("infotexts")[0].GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain("refiner", info.GetProperty("unsupported").GetRawText(), StringComparison.Ordinal);
        var (missing, why) = await Post(new { prompt = "x", steps = 2, width = 64, height = 64, override_settings = new { sd_model_checkpoint = "tiny-xl" }, refiner_checkpoint = "nope" });
        Assert.Equal((HttpStatusCode.UnprocessableEntity, "Could not find checkpoint with name nope"), (missing, why.GetProperty("detail").GetString()));
        await app.StopAsync();
    }

    [Fact]
    public async Task BuiltinAdapter_RunsTheRefiner_FromItsModelsFolder()
    {
        using var builtin = new BuiltinAdapter(_models);
        var job = new EngineJob { Model = "tiny-xl", Prompt = "a red fox", Steps = 4, Width = 64, Height = 64, Seed = 9, RefinerCheckpoint = "tiny-refiner", RefinerSwitchAt = 0.5 };
        var result = await builtin.GenerateAsync(job, null, CancellationToken.None);
        Assert.Contains("Refiner: tiny-refiner [", result.Infotexts[0], StringComparison.Ordinal);
        Assert.Equal(64, PngDecoder.Decode(result.Images[0]).Width);
        // The model itself as its refiner is no refiner, as A1111's apply_refiner does not switch to the loaded checkpoint.
        var itself = await builtin.GenerateAsync(job with { RefinerCheckpoint = "tiny-xl" }, null, CancellationToken.None);
        Assert.DoesNotContain("Refiner", itself.Infotexts[0], StringComparison.Ordinal);
        var failed = await Assert.ThrowsAsync<EngineFailedException>(() => builtin.GenerateAsync(job with { RefinerCheckpoint = "nope" }, null, CancellationToken.None));
        Assert.Equal("Could not find checkpoint with name nope", failed.Message);
    }

    public ValueTask DisposeAsync()
    {
        Directory.Delete(_models, recursive: true);
        return ValueTask.CompletedTask;
    }
}
