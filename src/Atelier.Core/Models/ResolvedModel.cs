using System.Text.Json;

namespace Atelier.Core.Models;

/// <summary>A model version a job runs on, as the worker needs it: A1111 clients know it by title, name or hash.</summary>
public sealed record ResolvedModel(string VersionId, string ModelId, string Name, string VersionName, string? Sha256)
{
    public string? ShortHash => Sha256?[..10];
    public string Title => ShortHash is null ? Name : $"{Name} [{ShortHash}]";
    public string ToJson() => JsonSerializer.Serialize(this);
    public Contracts.Workers.LeasedModel ToLeased() => new(VersionId, ModelId, Name, VersionName, Sha256);
    public static ResolvedModel? FromJson(string? json) => json is null ? null : JsonSerializer.Deserialize<ResolvedModel>(json);
}
