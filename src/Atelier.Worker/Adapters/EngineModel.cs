namespace Atelier.Worker.Adapters;

public sealed record EngineModel(string Name, string Title, string ShortHash, string? Sha256);
