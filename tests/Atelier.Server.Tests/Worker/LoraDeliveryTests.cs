using System.Text.Json;
using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Worker;

/// <summary>
/// LoRA by the prompt's <c>&lt;lora:name:weight&gt;</c> through the server: the tenant's LoRA model resolved at submit with
/// the caller's rights, leased with the job, fetched by the worker into its cache like a model, merged by the built-in
/// engine; another tenant's LoRA of the same name is never used.
/// </summary>
public class LoraDeliveryTests
{
    private static object Txt2Img(string model, string prompt) =>
        new { prompt, steps = 2, width = 64, height = 64, seed = 9, sampler_name = "Euler", override_settings = new { sd_model_checkpoint = model } };

    private static async Task<(byte[] Rgb, string Infotext)> DrawAsync(ApiClient app, string model, string prompt)
    {
        var answer = (await app.PostAsync("/sdapi/v1/txt2img", Txt2Img(model, prompt))).Json;
        var info = JsonDocument.Parse(answer.GetProperty("info").GetString()!).RootElement;
        return (PngDecoder.Decode(Convert.FromBase64String(answer.GetProperty("images")[0].GetString()!)).Rgb, info.GetProperty("infotexts")[0].GetString()!);
    }

    [Fact]
    public async Task TheTenantsLora_IsFetchedWithTheJob_AndMerged_AnotherTenantsIsNeverUsed()
    {
        await using var host = await TestHost.StartAsync();
        var owner = await Scenario.NewTenantAsync(host);
        var stranger = await Scenario.NewTenantAsync(host);
        var model = await DeliveredModels.OnnxFolderAsync(host, owner, "lora-base");
        var strangersModel = await DeliveredModels.OnnxFolderAsync(host, stranger, "lora-base");
        var loraPath = Path.Combine(Directory.CreateTempSubdirectory("atelier-lora-").FullName, "foxy.safetensors");
        TinyPipeline.WriteLora(loraPath);
        var loraBytes = await File.ReadAllBytesAsync(loraPath);
        Directory.Delete(Path.GetDirectoryName(loraPath)!, recursive: true);
        var lora = await DeliveredModels.RegisterAsync(host, owner, "foxy", "lora", new Dictionary<string, byte[]> { ["foxy.safetensors"] = loraBytes }, "foxy.safetensors");
        await using var worker = await InProcessWorker.StartAsync(host, "builtin");
        var app = owner.AppOf(host);

        var (plain, _) = await DrawAsync(app, model.Name, "a red fox");
        var (tinted, infotext) = await DrawAsync(app, model.Name, "a red fox <lora:foxy:1>");
        Assert.NotEqual(plain, tinted);
        Assert.Contains($"Lora hashes: \"foxy: {lora.PrimarySha256[..12]}\"", infotext, StringComparison.Ordinal);
        Assert.StartsWith("a red fox <lora:foxy:1>\n", infotext, StringComparison.Ordinal);
        // A name the tenant has no LoRA for is left out, as A1111 leaves it out.
        Assert.Equal(plain, (await DrawAsync(app, model.Name, "a red fox <lora:nobody:1>")).Rgb);
        // The stranger's prompt names the owner's LoRA: nothing of the owner's reaches the stranger's job.
        var strangerApp = stranger.AppOf(host);
        Assert.Equal((await DrawAsync(strangerApp, strangersModel.Name, "a red fox")).Rgb, (await DrawAsync(strangerApp, strangersModel.Name, "a red fox <lora:foxy:1>")).Rgb);
    }

    [Fact]
    public async Task TheTenantsEmbedding_IsUsedWhereThePromptNamesIt_AnotherTenantsPromptReadsTheWordAsWords()
    {
        await using var host = await TestHost.StartAsync();
        var owner = await Scenario.NewTenantAsync(host);
        var stranger = await Scenario.NewTenantAsync(host);
        var model = await DeliveredModels.OnnxFolderAsync(host, owner, "ti-base");
        var strangersModel = await DeliveredModels.OnnxFolderAsync(host, stranger, "ti-base");
        var folder = Directory.CreateTempSubdirectory("atelier-ti-").FullName;
        Atelier.Engine.Lora.Embedding.Write(Path.Combine(folder, "foxstyle.safetensors"), [.. Enumerable.Range(0, 16).Select(i => (float)Math.Cos(i) * 2)], 8);
        var bytes = await File.ReadAllBytesAsync(Path.Combine(folder, "foxstyle.safetensors"));
        Directory.Delete(folder, recursive: true);
        var embedding = await DeliveredModels.RegisterAsync(host, owner, "FoxStyle", "embedding", new Dictionary<string, byte[]> { ["foxstyle.safetensors"] = bytes }, "foxstyle.safetensors");
        await using var worker = await InProcessWorker.StartAsync(host, "builtin");

        // The same model and prompt in both tenants: only the owner has the embedding (named in another case, as CLIP reads it).
        var (styled, infotext) = await DrawAsync(owner.AppOf(host), model.Name, "a red fox, foxstyle");
        var (words, strangerInfotext) = await DrawAsync(stranger.AppOf(host), strangersModel.Name, "a red fox, foxstyle");
        Assert.NotEqual(words, styled);
        Assert.Contains($"TI hashes: \"FoxStyle: {embedding.PrimarySha256[..12]}\"", infotext, StringComparison.Ordinal);
        Assert.DoesNotContain("TI hashes", strangerInfotext, StringComparison.Ordinal);
    }
}
