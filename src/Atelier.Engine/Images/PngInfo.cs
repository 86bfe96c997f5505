namespace Atelier.Engine.Images;

/// <summary>
/// What A1111's <c>png-info</c> reads from an image: its text chunks, the <c>parameters</c> infotext, and that infotext
/// parsed into fields (with <c>Prompt</c> and <c>Negative prompt</c>). <see cref="Error"/> and <see cref="Status"/> say why
/// nothing could be read, in A1111's words.
/// </summary>
public sealed record PngInfo(string Info, Dictionary<string, string> Items, Dictionary<string, string> Parameters, string? Error = null, int Status = 200)
{
    /// <summary>Reads the image sent as base64 or a data URL.</summary>
    public static PngInfo Read(string? image)
    {
        if (string.IsNullOrEmpty(image))
        {
            return new PngInfo("", [], [], "Image not found", 404);
        }

        if (Base64Image.Decode(image) is not { } bytes)
        {
            return new PngInfo("", [], [], "Invalid encoded image", 400);
        }

        // A PNG's text chunks; a JPEG's or WebP's EXIF UserComment (where A1111 writes the infotext for those formats).
        var isPng = bytes.Length >= 8 && bytes[0] == 0x89 && bytes[1] == (byte)'P';
        var items = isPng ? Png.ReadText(bytes) : [];
        items.Remove("parameters", out var info);
        info ??= isPng ? null : SampleFormats.ReadUserComment(bytes);
        if (info is null)
        {
            return new PngInfo("", items, []);
        }

        var (prompt, negative, parameters) = Infotext.Parse(info);
        parameters["Prompt"] = prompt;
        parameters["Negative prompt"] = negative;
        return new PngInfo(info, items, parameters);
    }
}
