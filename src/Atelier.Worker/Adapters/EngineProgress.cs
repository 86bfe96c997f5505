namespace Atelier.Worker.Adapters;

public sealed record EngineProgress(int Step, int Steps, double Fraction);
