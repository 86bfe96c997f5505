using Atelier.Core.Jobs;

namespace Atelier.Core.Tests.Jobs;

public class ImageHeadersTests
{
    [Fact]
    public void Read_Png_GivesTheSizeOfItsIhdr()
    {
        Assert.Equal((ImageHeaders.Png, 8192, 640), ImageHeaders.Read(TestImages.Png(8192, 640)));
    }

    [Theory]
    [InlineData(0xC0)]
    [InlineData(0xC2)]
    [InlineData(0xCF)]
    public void Read_Jpeg_WalksPastOtherSegmentsToItsFrameHeader(byte frameMarker)
    {
        Assert.Equal((ImageHeaders.Jpeg, 1920, 1080), ImageHeaders.Read(TestImages.Jpeg(1920, 1080, frameMarker)));
    }

    [Fact]
    public void Read_JpegThatEndsBeforeAnyFrame_IsNull()
    {
        var cut = TestImages.Jpeg(64, 64)[..19]; // SOI, APP0 and DHT: the bytes end where the frame header would begin
        Assert.Null(ImageHeaders.Read(cut));
        Assert.Null(ImageHeaders.Read([0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02])); // scan data before any frame
    }

    [Fact]
    public void Read_WebP_InEachOfItsThreeForms()
    {
        Assert.Equal((ImageHeaders.WebP, 300, 200), ImageHeaders.Read(TestImages.WebPLossy(300, 200)));
        Assert.Equal((ImageHeaders.WebP, 16384, 1), ImageHeaders.Read(TestImages.WebPLossless(16384, 1)));
        Assert.Equal((ImageHeaders.WebP, 70000, 3), ImageHeaders.Read(TestImages.WebPExtended(70000, 3)));
    }

    [Fact]
    public void Read_OtherFormatsZeroSizesAndShortBytes_AreNull()
    {
        Assert.Null(ImageHeaders.Read("GIF89a\x01\x00\x01\x00"u8));
        Assert.Null(ImageHeaders.Read(TestImages.Png(0, 10)));
        Assert.Null(ImageHeaders.Read(TestImages.Png(-5, 10)));
        Assert.Null(ImageHeaders.Read(TestImages.Png(10, 10).AsSpan(0, 23)));
        Assert.Null(ImageHeaders.Read([]));
    }
}
