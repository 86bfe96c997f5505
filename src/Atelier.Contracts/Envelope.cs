namespace Atelier.Contracts;

/// <summary>The body of every failed response of the native API.</summary>
public sealed record ErrorEnvelope(
    string RequestId,
    bool Success,
    string SubErrCode,
    string SubErrMessage,
    string? ErrCode,
    string? ErrMessage)
{
    /// <summary>AUTOMATIC1111's error field (its clients read it), on the A1111 routes only: the message.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Detail { get; init; }

    /// <summary>A1111's name of the error (its exception type there; the catalog code here), on the A1111 routes only.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Error { get; init; }

    /// <summary>A1111's text of the error, on the A1111 routes only.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Errors { get; init; }
}

/// <summary>The body of every successful response of the native API.</summary>
public sealed record ApiResponse<T>(string RequestId, bool Success, T Data);

/// <summary>One page of a list.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, int PageNumber, int PageSize, long Total);
