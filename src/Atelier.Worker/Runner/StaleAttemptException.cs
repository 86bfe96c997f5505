namespace Atelier.Worker.Runner;

public sealed class StaleAttemptException() : Exception("the attempt is no longer the job's");
