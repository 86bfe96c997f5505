namespace Atelier.Core.Models;

/// <summary>Recent model resolutions (singleton), see <see cref="ModelResolver.ResolveAsync"/>.</summary>
public sealed class ResolutionCache
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (ResolvedModel Model, long Until)> _entries = new(StringComparer.Ordinal);

    public bool TryGet(string key, long now, out ResolvedModel model)
    {
        if (_entries.TryGetValue(key, out var e) && e.Until > now)
        {
            model = e.Model;
            return true;
        }

        model = null!;
        return false;
    }

    public void Put(string key, ResolvedModel model, long until)
    {
        if (_entries.Count > 50_000)
        {
            _entries.Clear();
        }

        _entries[key] = (model, until);
    }

    /// <summary>Forgets everything (a token's checkpoint changed through this server).</summary>
    public void Clear() => _entries.Clear();
}
