namespace Atelier.Data.Entities;

/// <summary>
/// A queued invocation (<c>X-Atelier-Invocation-Type: Async</c>): the request as received, its attempts and, once
/// done, the response, whose body is kept in the object store under <see cref="ResultKey"/>.
/// </summary>
public sealed class AsyncInvocation : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string FunctionId { get; set; }
    public string? Qualifier { get; set; }
    public required string Method { get; set; }
    public required string Path { get; set; }
    public string? ContentType { get; set; }
    public byte[] RequestBody { get; set; } = [];
    public string State { get; set; } = "queued";
    public int Attempts { get; set; }
    public int? StatusCode { get; set; }
    public string? ResultKey { get; set; }
    public string? ResultContentType { get; set; }
    public string? Error { get; set; }
    public string? Destination { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime NextAttemptAt { get; set; }
    public DateTime? LeaseUntil { get; set; }
    public DateTime? FinishedAt { get; set; }
}
