using Atelier.Engine.Images;

namespace Atelier.Engine.Tests;

/// <summary>img2img's <c>resize_mode</c>, as AUTOMATIC1111's <c>images.resize_image</c> places the picture, on sizes that need no resampling where the placement is what is checked.</summary>
public sealed class Img2ImgResizeTests
{
    private static readonly byte[] Red = [255, 0, 0], Green = [0, 255, 0], Blue = [0, 0, 255];

    /// <summary>A w×h picture coloured by <paramref name="colour"/>(x, y).</summary>
    private static byte[] Picture(int w, int h, Func<int, int, byte[]> colour)
    {
        var rgb = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
        {
            for (var x = 0; x < w; x++)
            {
                colour(x, y).CopyTo(rgb, ((y * w) + x) * 3);
            }
        }

        return Png.Encode(rgb, w, h);
    }

    private static byte[] Pixel((byte[] Rgb, int Width, int Height) image, int x, int y) => image.Rgb.AsSpan(((y * image.Width) + x) * 3, 3).ToArray();

    [Fact]
    public void CropAndResize_CoversTheSize_AndCutsTheSidesOff()
    {
        // 8×4 into 4×4: already 4 high, so the middle four columns are kept and the green and blue quarters are cut.
        var wide = Picture(8, 4, (x, _) => x < 2 ? Green : x >= 6 ? Blue : Red);
        var image = ImageDecoder.DecodeForImg2Img(wide, 4, 4, ImageDecoder.CropAndResize);
        Assert.Equal((4, 4), (image.Width, image.Height));
        for (var y = 0; y < 4; y++)
        {
            for (var x = 0; x < 4; x++)
            {
                Assert.Equal(Red, Pixel(image, x, y));
            }
        }
    }

    [Fact]
    public void ResizeAndFill_FitsThePicture_AndStretchesItsEdgeRowsIntoTheBands()
    {
        // 8×4 into 8×8: fits at full width, pasted at row 2; rows 0–1 repeat its top row, rows 6–7 its bottom row.
        var wide = Picture(8, 4, (_, y) => y == 0 ? Green : y == 3 ? Blue : Red);
        var image = ImageDecoder.DecodeForImg2Img(wide, 8, 8, ImageDecoder.ResizeAndFill);
        byte[][] rows = [Green, Green, Green, Red, Red, Blue, Blue, Blue];
        for (var y = 0; y < 8; y++)
        {
            Assert.Equal(rows[y], Pixel(image, 0, y));
            Assert.Equal(rows[y], Pixel(image, 7, y));
        }
    }

    [Theory]
    [InlineData(ImageDecoder.JustResize)]
    [InlineData(ImageDecoder.LatentUpscale)]
    public void JustResize_StretchesTheWholePicture(int mode)
    {
        // 8×4 into 4×4 (Lanczos): the aspect changes, nothing is cut: the left stays red, the right blue.
        var wide = Picture(8, 4, (x, _) => x < 4 ? Red : Blue);
        var image = ImageDecoder.DecodeForImg2Img(wide, 4, 4, mode);
        Assert.Equal((4, 4), (image.Width, image.Height));
        Assert.True(Pixel(image, 0, 0)[0] > 200 && Pixel(image, 0, 0)[2] < 60, string.Join(',', Pixel(image, 0, 0)));
        Assert.True(Pixel(image, 3, 3)[2] > 200 && Pixel(image, 3, 3)[0] < 60, string.Join(',', Pixel(image, 3, 3)));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(4)]
    public void UnknownMode_IsRefused(int mode) =>
        Assert.Throws<InvalidDataException>(() => ImageDecoder.DecodeForImg2Img(Picture(8, 8, (_, _) => Red), 8, 8, mode));
}
