using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Net;
using Atelier.Contracts.Errors;
using Atelier.Engine.Images;
using Atelier.Server.Tests.Infrastructure;
using SkiaSharp;

namespace Atelier.Server.Tests.Security;

/// <summary>
/// Decompression bombs and impossible sizes: init images and masks are measured from their headers and refused before
/// anything is queued; width × height × images is bounded; JPEG and WebP init images are accepted and the engine
/// decodes them at the job's size.
/// </summary>
public class ImageBombTests
{
    /// <summary>A real PNG of zeros (grey, 8-bit): a few dozen KB that inflate to width × height bytes.</summary>
    private static byte[] ZeroPng(int width, int height)
    {
        using var raw = new MemoryStream();
        using (var z = new ZLibStream(raw, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var row = new byte[width + 1];
            for (var y = 0; y < height; y++)
            {
                z.Write(row);
            }
        }

        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth; colour type 0 (grey), no interlace
        Chunk(png, "IHDR", ihdr);
        Chunk(png, "IDAT", raw.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(len, data.Length);
        s.Write(len);
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        s.Write(typed);
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32.HashToUInt32(typed));
        s.Write(crc);
    }

    private static byte[] Encoded(SKEncodedImageFormat format, int width, int height)
    {
        using var bitmap = new SKBitmap(width, height);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(new SKColor(30, 90, 200));
            using var paint = new SKPaint { Color = new SKColor(240, 200, 40) };
            canvas.DrawCircle(width / 2f, height / 2f, Math.Min(width, height) / 3f, paint);
        }

        using var data = bitmap.Encode(format, 90);
        return data.ToArray();
    }

    private static object Img2Img(string init, string? mask = null, int size = 64) =>
        new { prompt = "a variation", steps = 3, width = size, height = size, denoising_strength = 0.5, init_images = new[] { init }, mask };

    [Fact]
    public async Task An8192SquarePngOfZeros_IsRefusedFromItsHeader_BeforeAnythingIsQueued()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var bomb = ZeroPng(8192, 8192);
        Assert.True(bomb.Length < 512_000, $"the bomb is {bomb.Length} bytes"); // it inflates to 64 MiB of pixels, 192 MiB as RGB
        var body = Convert.ToBase64String(bomb);

        foreach (var route in new[] { "/api/v1/predict/img2img", "/sdapi/v1/img2img" })
        {
            var error = (await app.PostAsync(route, Img2Img(body))).Error(ErrorCatalog.p_common_inputinvalid, 400);
            Assert.Contains("8192×8192", error.GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
        }

        (await app.PostAsync("/api/v1/agents/default/jobs", new { input = Img2Img("data:image/png;base64," + body) })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        // A mask is measured too; so is a JPEG that only declares a huge frame.
        var small = Convert.ToBase64String(ZeroPng(64, 64));
        Assert.Contains("mask", (await app.PostAsync("/api/v1/predict/img2img", Img2Img(small, body))).Error(ErrorCatalog.p_common_inputinvalid, 400)
            .GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
        var jpeg = Encoded(SKEncodedImageFormat.Jpeg, 64, 64);
        var sof = Enumerable.Range(0, jpeg.Length - 1).First(i => jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC2);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 5), 20000);
        BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(sof + 7), 20000);
        (await app.PostAsync("/api/v1/predict/img2img", Img2Img(Convert.ToBase64String(jpeg)))).Error(ErrorCatalog.p_common_inputinvalid, 400);
        // Bytes that are no image at all.
        (await app.PostAsync("/api/v1/predict/img2img", Img2Img(Convert.ToBase64String("just some text"u8.ToArray())))).Error(ErrorCatalog.p_common_inputinvalid, 400);

        Assert.Equal(0, (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task WidthTimesHeightTimesImages_OverTheBound_IsRefused_PerAgent()
    {
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Generation:MaxPixelsPerJob"] = "16777216" });
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        // 2048 × 2048 × 8 = 33,554,432 pixels: each number is allowed alone, not together.
        var error = (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "a city", width = 2048, height = 2048, batch_size = 8 }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Contains("16777216", error.GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
        (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "a city", width = 2048, height = 2048, batch_size = 2, n_iter = 4 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "a city", width = 2048, height = 2048, batch_size = 4 })).Ok(HttpStatusCode.Accepted);
        Assert.Equal(1, (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());

        await using var small = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Generation:MaxPixelsPerJobByAgent:default"] = "65536" });
        var other = (await Scenario.NewTenantAsync(small)).AppOf(small);
        (await other.PostAsync("/api/v1/predict/txt2img", new { prompt = "a city", width = 256, height = 256, batch_size = 2 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await other.PostAsync("/api/v1/predict/txt2img", new { prompt = "a city", width = 256, height = 256 })).Ok(HttpStatusCode.Accepted);
    }

    [Theory]
    [InlineData("jpeg")]
    [InlineData("webp")]
    public async Task JpegAndWebPInitImages_AreAccepted_AndDecodedByTheEngine(string format)
    {
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Jobs:SyncTimeoutSeconds"] = "120" });
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, "builtin");
        var app = world.AppOf(host);
        // Larger than the job's size: the engine decodes it to 64 × 64.
        var init = Encoded(format == "jpeg" ? SKEncodedImageFormat.Jpeg : SKEncodedImageFormat.Webp, 320, 240);
        var r = await app.PostAsync("/sdapi/v1/img2img", Img2Img(Convert.ToBase64String(init)));
        Assert.True(r.Status == HttpStatusCode.OK, r.Text);
        var image = Convert.FromBase64String(r.Json.GetProperty("images")[0].GetString()!);
        Assert.Equal((64, 64), (PngDecoder.Decode(image).Width, PngDecoder.Decode(image).Height));

        // What the engine is given: the picture at the job's size, its colours kept (the yellow disc in the middle).
        var decoded = ImageDecoder.Decode(init, 64, 48);
        Assert.Equal(64 * 48 * 3, decoded.Rgb.Length);
        var centre = ((24 * 64) + 32) * 3;
        Assert.True(decoded.Rgb[centre] > 200 && decoded.Rgb[centre + 2] < 100, $"centre is {decoded.Rgb[centre]},{decoded.Rgb[centre + 1]},{decoded.Rgb[centre + 2]}");
    }
}
