namespace Atelier.Storage;

/// <summary>A key that no backend accepts: it could name another object than the one meant (traversal, aliases).</summary>
public sealed class InvalidObjectKeyException(string key, string why) : ArgumentException($"Object key refused ({why}): {Shown(key)}")
{
    private static string Shown(string key) => key.Length > 200 ? key[..200] + "…" : key;
}
