namespace Atelier.Worker.Runner;

public sealed class WorkerProtocolException(int status, string body, string path = "", string? message = null) : Exception($"server answered {status} to {path}: {body}")
{
    public int Status { get; } = status;

    /// <summary>What failed, in words an API client can use: no protocol paths, bodies or internal codes.</summary>
    public string ClientMessage =>
        (path.Contains("/images/", StringComparison.Ordinal) ? "storing a generated image failed" : "reporting the result failed")
        + (message is { Length: > 0 } ? $": {message}" : $" (the server answered {Status})");
}
