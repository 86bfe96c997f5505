namespace Atelier.Worker.Adapters;

public sealed record EngineResult(IReadOnlyList<byte[]> Images, IReadOnlyList<long> Seeds, string ModelHash, IReadOnlyList<string> Infotexts);
