namespace Atelier.Contracts;

/// <summary>The body of every failed response of the native API.</summary>
public sealed record ErrorEnvelope(
    string RequestId,
    bool Success,
    string SubErrCode,
    string SubErrMessage,
    string? ErrCode,
    string? ErrMessage);

/// <summary>The body of every successful response of the native API.</summary>
public sealed record ApiResponse<T>(string RequestId, bool Success, T Data);

/// <summary>One page of a list.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, int PageNumber, int PageSize, long Total);
