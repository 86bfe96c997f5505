namespace Atelier.Contracts.Jobs;

/// <summary>One image of the generated-images library. <c>url</c> (on a single get) is signed and expires.</summary>
public sealed record GeneratedImageDto(string Id, string JobId, int Index, string? AppId, string? SessionId, string? ModelVersionId, long Seed,
    string Infotext, int Width, int Height, long Size, string Sha256, DateTime CreatedAt, string? Url, DateTime? UrlExpiresAt);

public sealed record DeleteImagesRequest(IReadOnlyList<string>? Ids);

public sealed record DeleteImagesResult(IReadOnlyList<string> Deleted, IReadOnlyList<string> NotFound);
