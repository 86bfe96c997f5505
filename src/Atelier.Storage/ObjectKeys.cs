namespace Atelier.Storage;

/// <summary>
/// The one rule for object keys, applied by every backend before it touches anything: relative paths of non-empty
/// segments separated by '/', none of them <c>.</c> or <c>..</c>, no backslash, no control character. A local folder
/// resolves <c>..</c> and S3 servers differ on <c>//</c>, so such keys are refused rather than interpreted.
/// </summary>
public static class ObjectKeys
{
    public const int MaxLength = 1024;

    public static string Check(string key)
    {
        if (string.IsNullOrEmpty(key))
        {
            throw new InvalidObjectKeyException(key ?? "", "empty");
        }

        if (key.Length > MaxLength)
        {
            throw new InvalidObjectKeyException(key, "too long");
        }

        if (key[0] == '/')
        {
            throw new InvalidObjectKeyException(key, "leading '/'");
        }

        foreach (var c in key)
        {
            if (c == '\\')
            {
                throw new InvalidObjectKeyException(key, "backslash");
            }

            if (char.IsControl(c))
            {
                throw new InvalidObjectKeyException(key, "control character");
            }
        }

        foreach (var segment in key.Split('/'))
        {
            if (segment.Length == 0)
            {
                throw new InvalidObjectKeyException(key, "empty segment ('//' or a trailing '/')");
            }

            if (segment is "." or "..")
            {
                throw new InvalidObjectKeyException(key, $"'{segment}' segment");
            }
        }

        return key;
    }
}
