using Atelier.Engine.Images;
using Atelier.Engine.Lora;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

namespace Atelier.Engine.Tests;

/// <summary>A1111's <c>sd_vae</c>: a VAE folder decodes in place of the model's own (a decoder-only one leaves encoding to the model's), named in the infotext.</summary>
public sealed class VaeTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-vae-").FullName;

    [Fact]
    public void ChosenVae_DecodesInsteadOfTheModels_AndTheInfotextNamesIt()
    {
        TinyPipeline.Write(Path.Combine(_root, "tiny"));
        // A decoder-only VAE of the same interface: every latent a flat 8×8 block of 0.25 per channel sum.
        var bright = Path.Combine(_root, "VAE", "flat");
        TinyPipeline.WriteFlatVae(bright);
        var vaes = NetworkFile.ScanVaes(Path.Combine(_root, "VAE"));
        Assert.Equal("flat", Assert.Single(vaes).Name);
        // A1111 names VAE files with their extension; Automatic and None are the model's own.
        Assert.Equal(vaes[0], NetworkFile.FindVae(vaes, "flat.safetensors", out var missing));
        Assert.False(missing);
        Assert.Null(NetworkFile.FindVae(vaes, "Automatic", out _));
        Assert.Null(NetworkFile.FindVae(vaes, "other.pt", out missing));
        Assert.True(missing);

        using var pipeline = DiffusionPipeline.Load(Path.Combine(_root, "tiny"), "tiny", "6666666666");
        var request = new GenerationRequest { Prompt = "a fox", Steps = 2, Width = 64, Height = 64, Seed = 1, Sampler = "Euler" };
        var own = pipeline.Generate(request, null, CancellationToken.None).Images[0];
        var flat = pipeline.Generate(request with { Vae = vaes[0] }, null, CancellationToken.None).Images[0];
        var pixels = PngDecoder.Decode(flat.Png).Rgb;
        Assert.NotEqual(PngDecoder.Decode(own.Png).Rgb, pixels);
        // Each 8×8 block is one colour with this decoder.
        Assert.Equal(pixels.AsSpan(0, 3).ToArray(), pixels.AsSpan(7 * 3, 3).ToArray());
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(bright, "vae_decoder", "model.onnx"))))[..10];
        Assert.Contains($"VAE hash: {hash}, VAE: flat", flat.Infotext, StringComparison.Ordinal);
        // img2img with it: the model's encoder encodes (the chosen VAE has none), the chosen one decodes.
        var img2img = pipeline.Generate(request with { Vae = vaes[0], InitImage = (new byte[64 * 64 * 3], 64, 64), DenoisingStrength = 0.5 }, null, CancellationToken.None);
        Assert.Single(img2img.Images);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
