using System.Text.Json;
using Atelier.Core.Jobs;

namespace Atelier.Core.Tests.Jobs;

public class GenerationInputTests
{
    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement;

    private static JsonElement Img2Img(byte[] image, string extra = "") =>
        Json($$"""{"prompt":"p","init_images":["{{Convert.ToBase64String(image)}}"]{{extra}}}""");

    [Fact]
    public void Check_PromptAlone_PassesOnTheDefaults()
    {
        GenerationInput.Check(Json("""{"prompt":"a lighthouse"}"""), img2img: false);
    }

    [Fact]
    public void Check_FieldsItDoesNotRead_AreLeftAlone()
    {
        // A1111 clients send many fields Atelier ignores; their types are not Atelier's business.
        GenerationInput.Check(Json("""{"prompt":"p","restore_faces":"yes","tiling":[1,2],"styles":{"a":1}}"""), img2img: false);
    }

    [Theory]
    [InlineData("""{"steps":0}""", "steps")]
    [InlineData("""{"steps":151}""", "steps")]
    [InlineData("""{"steps":"20"}""", "steps")]
    [InlineData("""{"steps":2.5}""", "steps")]
    [InlineData("""{"seed":-2}""", "seed")]
    [InlineData("""{"cfg_scale":30.5}""", "cfg_scale")]
    [InlineData("""{"denoising_strength":-0.1}""", "denoising_strength")]
    [InlineData("""{"width":56}""", "width")]
    [InlineData("""{"height":2056}""", "height")]
    [InlineData("""{"batch_size":9}""", "batch_size")]
    [InlineData("""{"n_iter":0}""", "n_iter")]
    [InlineData("""{"sampler_name":7}""", "sampler_name")]
    [InlineData("""{"override_settings":"sd15"}""", "override_settings")]
    public void Check_FieldOfWrongTypeOrOutOfRange_IsRefusedNamingIt(string body, string field)
    {
        Assert.StartsWith(field + ":", Invalid.Input(() => GenerationInput.Check(Json(body), img2img: false)), StringComparison.Ordinal);
    }

    [Fact]
    public void Check_NullFields_AreTheDefaults()
    {
        GenerationInput.Check(Json("""{"prompt":null,"steps":null,"width":null,"override_settings":null}"""), img2img: false);
    }

    [Fact]
    public void Check_SidesThatAreNotMultiplesOfEight_AreRefused()
    {
        Assert.StartsWith("width/height:", Invalid.Input(() => GenerationInput.Check(Json("""{"width":516}"""), img2img: false)), StringComparison.Ordinal);
        GenerationInput.Check(Json("""{"width":520,"height":2048}"""), img2img: false);
    }

    [Fact]
    public void Check_MoreThanSixteenImagesPerJob_IsRefused()
    {
        // Each is within its own range (1-8); together they make 20 images.
        Assert.StartsWith("batch_size:", Invalid.Input(() => GenerationInput.Check(Json("""{"batch_size":4,"n_iter":5,"width":64,"height":64}"""), img2img: false)),
            StringComparison.Ordinal);
        GenerationInput.Check(Json("""{"batch_size":4,"n_iter":4,"width":64,"height":64}"""), img2img: false);
    }

    [Fact]
    public void Check_PixelsPerJob_AreBoundedPerAgent()
    {
        var limits = new GenerationOptions { MaxPixelsPerJob = 512 * 512, MaxPixelsPerJobByAgent = { ["big"] = 1024 * 1024 } };
        var body = Json("""{"width":1024,"height":1024}""");

        var problem = Invalid.Input(() => GenerationInput.Check(body, img2img: false, limits, "default"));
        Assert.Contains("is 1048576, over the 262144", problem, StringComparison.Ordinal);
        GenerationInput.Check(body, img2img: false, limits, "big");
    }

    [Fact]
    public void Check_TextThatIsNotValidUnicode_IsRefused_Anywhere()
    {
        // A lone surrogate, even in a field Atelier does not read.
        Assert.Contains("not valid Unicode", Invalid.Input(() => GenerationInput.Check(Json("""{"styles":["ok","\ud800"]}"""), img2img: false)),
            StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"prompt":"p"}""")]
    [InlineData("""{"prompt":"p","init_images":[]}""")]
    [InlineData("""{"prompt":"p","init_images":["not base64!"]}""")]
    [InlineData("""{"prompt":"p","init_images":[42]}""")]
    public void Check_Img2ImgWithoutAUsableInitImage_IsRefused(string body)
    {
        Assert.StartsWith("init_images:", Invalid.Input(() => GenerationInput.Check(Json(body), img2img: true)), StringComparison.Ordinal);
    }

    [Fact]
    public void Check_InitImageOverTheLimits_IsRefusedFromItsHeaderAlone()
    {
        // 33 bytes that claim 8192 × 8192: refused without decoding anything.
        var problem = Invalid.Input(() => GenerationInput.Check(Img2Img(TestImages.Png(8192, 8192)), img2img: true));
        Assert.StartsWith("init_images[0]: is 8192×8192", problem, StringComparison.Ordinal);

        GenerationInput.Check(Img2Img(TestImages.Png(4096, 4096)), img2img: true);
        GenerationInput.Check(Img2Img(TestImages.Jpeg(640, 480)), img2img: true);
        GenerationInput.Check(Img2Img(TestImages.WebPLossless(640, 480)), img2img: true);
    }

    [Fact]
    public void Check_MaskOverThePixelLimit_IsRefused_AsADataUrlToo()
    {
        var limits = new GenerationOptions { MaxInitImagePixels = 1000 * 1000 };
        var mask = "data:image/png;base64," + Convert.ToBase64String(TestImages.Png(1024, 1024));
        var body = Img2Img(TestImages.Png(512, 512), $$""","mask":"{{mask}}" """);

        Assert.StartsWith("mask: is 1024×1024", Invalid.Input(() => GenerationInput.Check(body, img2img: true, limits)), StringComparison.Ordinal);
    }

    [Fact]
    public void Check_InitImageOfAnotherFormat_IsRefused()
    {
        Assert.Equal("init_images[0]: must be a PNG, JPEG or WebP image",
            Invalid.Input(() => GenerationInput.Check(Img2Img("GIF89a\u0001\u0000\u0001\u0000;"u8.ToArray()), img2img: true)));
    }

    [Theory]
    [InlineData("""{}""", 1)]
    [InlineData("""{"batch_size":3,"n_iter":2}""", 6)]
    [InlineData("""{"batch_size":0,"n_iter":"x"}""", 1)]
    public void ImagesOf_IsBatchSizeTimesIterations_AtLeastOne(string body, int images)
    {
        Assert.Equal(images, GenerationInput.ImagesOf(Json(body)));
    }

    [Fact]
    public void CheckpointOf_ReadsTheA1111OverrideOnlyWhenItIsAString()
    {
        Assert.Equal("sd15.safetensors", GenerationInput.CheckpointOf(Json("""{"override_settings":{"sd_model_checkpoint":"sd15.safetensors"}}""")));
        Assert.Null(GenerationInput.CheckpointOf(Json("""{"override_settings":{"sd_model_checkpoint":3}}""")));
        Assert.Null(GenerationInput.CheckpointOf(Json("""{"prompt":"p"}""")));
    }
}
