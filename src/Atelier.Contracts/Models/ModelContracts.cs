namespace Atelier.Contracts.Models;

public sealed record CreateModelRequest(string? Name, string? Type, string? Description, IReadOnlyList<string>? Tags);
public sealed record UpdateModelRequest(string? Name, string? Description, IReadOnlyList<string>? Tags);
public sealed record ModelDto(string Id, string Name, string Type, string? Description, IReadOnlyList<string> Tags, DateTime CreatedAt, DateTime UpdatedAt);

public sealed record CreateTagRequest(string? Name);
/// <summary>A tag of the dictionary; <c>scope</c> is <c>platform</c> or <c>tenant</c>.</summary>
public sealed record TagDto(string Id, string Name, string Scope);

/// <summary>A file to add to a version: from an upload, from a URL (downloaded in the background), or by SHA-256.</summary>
public sealed record AddFileRequest(string? AliasName, string? UploadId, string? Url, string? Sha256, bool? Primary);

public sealed record CreateVersionRequest(string? Name, IReadOnlyList<string>? AvailableRoles, IReadOnlyList<AddFileRequest>? Files);
public sealed record UpdateVersionRequest(IReadOnlyList<string>? AvailableRoles);

public sealed record ModelFileDto(string Id, string VersionId, string AliasName, bool Primary, string Source, string State,
    string? Sha256, long? Size, string? Format, string? DetectedKind, string? AutoV2, string? AutoV3, string? SourceUrl);

/// <summary>A version: <c>syncState</c> is <c>synced</c> when every file is stored, <c>syncing</c> or <c>failed</c> otherwise.</summary>
public sealed record ModelVersionDto(string Id, string ModelId, string Name, IReadOnlyList<string> AvailableRoleIds, string SyncState,
    IReadOnlyList<ModelFileDto> Files, DateTime CreatedAt);

public sealed record DownloadStateDto(string FileId, string State, long DownloadedBytes, long? TotalBytes, double? Percent,
    long BytesPerSecond, int Attempts, DateTime? StartedAt, DateTime? FinishedAt);

public sealed record CreateUploadRequest(string? Type, string? FileName, long? Size, string? Sha256);

/// <summary>
/// An upload: PUT the bytes to <c>url</c> with <c>headers</c> (the local store's <c>X-Upload-Secret</c>, shown once, at
/// creation); with the S3 store the URL is presigned, and then call <c>complete</c>. Past the store's one-PUT limit
/// (<c>Atelier:Storage:S3MultipartThresholdBytes</c>) <c>url</c> is empty and <c>parts</c> lists a presigned URL per part
/// of <c>partSize</c> bytes (the last one the rest): PUT each, and complete with each part's number and the ETag its PUT answered.
/// </summary>
public sealed record UploadDto(string Id, string Type, string FileName, long DeclaredSize, string State, string? Sha256, string? Error,
    string Url, string Method, bool NeedsComplete, DateTime ExpiresAt, BlobDto? Blob)
{
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    public long? PartSize { get; init; }

    public IReadOnlyList<UploadPartDto>? Parts { get; init; }
}

/// <summary>One part of a multipart upload: its number (from 1), where to PUT it, and which bytes of the file it carries.</summary>
public sealed record UploadPartDto(int PartNumber, string Url, long Offset, long Size);

/// <summary>The parts a client sent, each with the ETag its PUT answered (only for an upload in parts; no body otherwise).</summary>
public sealed record CompleteUploadRequest(IReadOnlyList<CompletedPart>? Parts);

public sealed record CompletedPart(int? PartNumber, string? ETag);

public sealed record BlobDto(string Sha256, long Size, string Format, string DetectedKind, string AutoV2, string? AutoV3, string? MetadataJson);

public sealed record CheckpointConfigRequest(string? ModelVersionId);
public sealed record CheckpointConfigDto(string ModelVersionId, string ModelId, string ModelName, string VersionName);

/// <summary>A version the caller may use now: its role allows it and every file is stored.</summary>
public sealed record VersionAccessDto(string VersionId, string ModelId, string ModelName, string ModelType, IReadOnlyList<ModelFileDto> Files);
