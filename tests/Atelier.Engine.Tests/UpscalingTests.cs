using System.Text.Json;
using Atelier.Engine.Images;

namespace Atelier.Engine.Tests;

/// <summary>The model-free upscalers of A1111's extras, on pictures whose result is known.</summary>
public class UpscalingTests
{
    private static byte[] Solid(int w, int h, byte r, byte g, byte b) => [.. Enumerable.Range(0, w * h).SelectMany(_ => new[] { r, g, b })];

    [Fact]
    public void Nearest_DoublesEachPixelIntoABlock()
    {
        byte[] rgb = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]; // 2×2
        var up = Upscaling.Resize(rgb, 2, 2, 4, 4, "Nearest");
        Assert.Equal(rgb[0..3], up[0..3]);
        const int inner = ((1 * 4) + 1) * 3;
        const int corner = ((3 * 4) + 3) * 3;
        Assert.Equal(rgb[0..3], up[inner..(inner + 3)]);
        Assert.Equal(rgb[9..12], up[corner..]);
    }

    [Fact]
    public void Lanczos_KeepsAFlatColourFlat_AndARampMonotonic()
    {
        Assert.All(Upscaling.Resize(Solid(8, 6, 200, 100, 50), 8, 6, 20, 15, "Lanczos").Chunk(3), p => Assert.Equal([200, 100, 50], p));
        // A horizontal ramp 0, 32, …, 224 stays a non-decreasing ramp (Lanczos rings only at edges, and a ramp has none inside).
        var ramp = Enumerable.Range(0, 8).SelectMany(x => Enumerable.Repeat((byte)(x * 32), 3)).ToArray();
        var up = Upscaling.Resize(ramp, 8, 1, 32, 1, "Lanczos");
        var reds = up.Where((_, i) => i % 3 == 0).ToArray();
        Assert.True(reds[4..^4].Zip(reds[5..^3]).All(p => p.Second >= p.First), string.Join(",", reds));
    }

    [Fact]
    public void Run_ScalesByAFactor_OrCoversASizeAndCrops_AndNoneKeepsTheImage()
    {
        var png = Png.Encode(Solid(40, 20, 1, 2, 3), 40, 20);
        JsonElement Request(object body) => JsonDocument.Parse(JsonSerializer.Serialize(body)).RootElement;
        (int, int) Size(byte[] result) => PngDecoder.Decode(result) is var (_, w, h) ? (w, h) : default;
        Assert.Equal((100, 50), Size(Upscaling.Run(Request(new { upscaling_resize = 2.5, upscaler_1 = "Lanczos" }), png).Png));
        Assert.Equal((64, 64), Size(Upscaling.Run(Request(new { resize_mode = 1, upscaling_resize_w = 64, upscaling_resize_h = 64, upscaler_1 = "Nearest" }), png).Png));
        Assert.Equal((128, 64), Size(Upscaling.Run(Request(new { resize_mode = 1, upscaling_resize_w = 64, upscaling_resize_h = 64, upscaling_crop = false, upscaler_1 = "Nearest" }), png).Png));
        Assert.Equal((40, 20), Size(Upscaling.Run(Request(new { upscaling_resize = 4, upscaler_1 = "None" }), png).Png));
        Assert.Throws<ArgumentException>(() => Upscaling.Run(Request(new { upscaling_resize = 2, upscaler_1 = "ESRGAN_4x" }), png));
        Assert.Throws<ArgumentException>(() => Upscaling.Run(Request(new { upscaling_resize = 500, upscaler_1 = "Lanczos" }), png));
    }
}
