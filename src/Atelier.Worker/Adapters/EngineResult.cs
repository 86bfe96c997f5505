namespace Atelier.Worker.Adapters;

/// <remarks><see cref="Subseeds"/>: each image's variation seed, where the engine reports them.</remarks>
public sealed record EngineResult(IReadOnlyList<byte[]> Images, IReadOnlyList<long> Seeds, string ModelHash, IReadOnlyList<string> Infotexts,
    IReadOnlyList<long>? Subseeds = null);
