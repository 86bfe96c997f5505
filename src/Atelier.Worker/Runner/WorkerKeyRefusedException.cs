namespace Atelier.Worker.Runner;

/// <summary>The server refused the worker's key (401): revoked, replaced by a newer one, or never issued.</summary>
public sealed class WorkerKeyRefusedException(string detail) : Exception($"the server refused the worker key: {detail}");
