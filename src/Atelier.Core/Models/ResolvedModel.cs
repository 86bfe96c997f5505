using System.Text.Json;
using Atelier.Contracts.Workers;

namespace Atelier.Core.Models;

/// <summary>
/// A model version a job runs on, as the worker needs it: A1111 clients know it by title, name or hash. <c>Type</c> is
/// the model's type (null in jobs queued before it was recorded).
/// </summary>
/// <remarks><c>Networks</c>: the LoRA versions the job's prompt names that the caller may use (resolved at submit, with the caller's rights).</remarks>
public sealed record ResolvedModel(string VersionId, string ModelId, string Name, string VersionName, string? Sha256, string? Type = null,
    IReadOnlyList<ResolvedModel>? Networks = null)
{
    public string? ShortHash => Sha256?[..10];
    public string Title => ShortHash is null ? Name : $"{Name} [{ShortHash}]";

    /// <summary>The job's key for hot-model scheduling (<see cref="ModelKeys.Of"/>).</summary>
    public string Key => ModelKeys.Of(VersionId, Sha256);

    public string ToJson() => JsonSerializer.Serialize(this);

    /// <summary>The model as a leased job carries it, with the version's stored files.</summary>
    public LeasedModel ToLeased(IReadOnlyList<LeasedFile>? files, string? type) => new(VersionId, ModelId, Name, VersionName, Sha256, Type ?? type, files, Key);

    public static ResolvedModel? FromJson(string? json) => json is null ? null : JsonSerializer.Deserialize<ResolvedModel>(json);
}

/// <summary>
/// What hot-model scheduling compares (<c>Job.ModelKey</c>, a worker's hot request info): the primary file's content,
/// <c>sha256:&lt;hex&gt;</c>, when its hash is known, so the same bytes registered by two tenants (or in two versions) are
/// one hot model to a shared worker; else the version id.
/// </summary>
public static class ModelKeys
{
    public const string Sha256Prefix = "sha256:";

    public static string Of(string versionId, string? primarySha256) => primarySha256 is null ? versionId : Sha256Prefix + primarySha256;

    public static bool IsContentKey(string key) => key.StartsWith(Sha256Prefix, StringComparison.Ordinal);
}
