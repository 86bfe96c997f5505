namespace Atelier.Engine.Images;

/// <summary>Images sent as text, the way AUTOMATIC1111 takes them.</summary>
public static class Base64Image
{
    /// <summary>Bare base64 or a <c>data:</c> URL, as A1111 accepts; null when it is neither.</summary>
    public static byte[]? Decode(string text)
    {
        var comma = text.StartsWith("data:", StringComparison.Ordinal) ? text.IndexOf(',', StringComparison.Ordinal) : -1;
        try
        {
            return Convert.FromBase64String(comma >= 0 ? text[(comma + 1)..] : text);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
