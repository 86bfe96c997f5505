namespace Atelier.Worker.Adapters;

/// <summary>Where a generation is; <paramref name="Preview"/>: a small PNG of the latents now, when the engine makes one.</summary>
public sealed record EngineProgress(int Step, int Steps, double Fraction, byte[]? Preview = null);
