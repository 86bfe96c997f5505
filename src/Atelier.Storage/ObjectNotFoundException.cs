namespace Atelier.Storage;

/// <summary>The object named by a key is not in the store (its record outlived its bytes).</summary>
public sealed class ObjectNotFoundException(string key, Exception? inner = null) : IOException($"no object '{key}' in the store", inner)
{
    public string Key { get; } = key;
}
