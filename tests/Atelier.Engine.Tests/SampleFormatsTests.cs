using System.Text;
using Atelier.Engine.Images;

namespace Atelier.Engine.Tests;

/// <summary>samples_format: JPEG and WebP re-encodings of an engine PNG that decode to the picture and carry its infotext in EXIF.</summary>
public sealed class SampleFormatsTests
{
    private const string Infotext = "a red fox, 狐狸 \"quoted\"\nNegative prompt: blur\nSteps: 2, Sampler: Euler, Seed: 7, Size: 32x16";

    private static byte[] EnginePng()
    {
        var rgb = new byte[32 * 16 * 3];
        for (var p = 0; p < 32 * 16; p++)
        {
            rgb[p * 3] = (byte)(p % 32 * 8);
            rgb[(p * 3) + 1] = (byte)(p / 32 * 16);
            rgb[(p * 3) + 2] = 128;
        }

        return Png.Encode(rgb, 32, 16, new Dictionary<string, string> { ["parameters"] = Infotext });
    }

    [Theory]
    [InlineData("jpg")]
    [InlineData("JPEG")]
    [InlineData("webp")]
    public void Lossy_DecodesToThePicture_AndCarriesTheInfotextInExif(string format)
    {
        var png = EnginePng();
        var encoded = SampleFormats.FromPng(png, format, 95);
        if (format == "webp")
        {
            Assert.Equal("RIFF", Encoding.ASCII.GetString(encoded, 0, 4));
            Assert.Equal("WEBPVP8X", Encoding.ASCII.GetString(encoded, 8, 8));
            Assert.Equal(0x08, encoded[20] & 0x08); // the EXIF flag
        }
        else
        {
            Assert.Equal([0xFF, 0xD8, 0xFF, 0xE1], encoded[..4]);
            Assert.Equal("Exif\0\0MM\0*", Encoding.ASCII.GetString(encoded, 6, 10));
        }

        var (rgb, w, h) = ImageDecoder.DecodeOriginal(encoded);
        Assert.Equal((32, 16), (w, h));
        var original = PngDecoder.Decode(png).Rgb;
        Assert.True(rgb.Zip(original, (a, b) => Math.Abs(a - b)).Average() < 6, "close to the PNG at quality 95");
        Assert.Equal(Infotext, SampleFormats.ReadUserComment(encoded));

        var read = PngInfo.Read(Convert.ToBase64String(encoded));
        Assert.Equal(Infotext, read.Info);
        Assert.Equal("a red fox, 狐狸 \"quoted\"", read.Parameters["Prompt"]);
        Assert.Equal("blur", read.Parameters["Negative prompt"]);
    }

    [Fact]
    public void Png_IsReturnedAsItIs_AndQualityShowsInTheSize()
    {
        var png = EnginePng();
        Assert.Same(png, SampleFormats.FromPng(png, "png"));
        Assert.True(SampleFormats.FromPng(png, "jpg", 98).Length > SampleFormats.FromPng(png, "jpg", 10).Length);
        Assert.Throws<ArgumentException>(() => SampleFormats.FromPng(png, "gif"));
        Assert.Null(SampleFormats.ReadUserComment(png));
        var jpeg = SampleFormats.FromPng(png, "jpg");
        Assert.Same(jpeg, SampleFormats.FromPng(jpeg, "webp")); // already encoded by its engine: left as it is
    }
}
