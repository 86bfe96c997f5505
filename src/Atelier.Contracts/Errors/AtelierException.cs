namespace Atelier.Contracts.Errors;

/// <summary>
/// The one domain error type: a catalog code with its placeholder values and, where an internal call
/// failed behind it, that call's cause. The server's exception handler turns it into the envelope.
/// </summary>
public sealed class AtelierException : Exception
{
    public AtelierException(ErrorCode code, IReadOnlyDictionary<string, string>? values = null,
        string? errCode = null, string? errMessage = null, int? status = null, Exception? inner = null)
        : base(code.Format(english: true, values), inner)
    {
        Code = code;
        Values = values ?? new Dictionary<string, string>();
        ErrCode = errCode;
        ErrMessage = errMessage;
        Status = status ?? code.Status;
    }

    public ErrorCode Code { get; }
    public IReadOnlyDictionary<string, string> Values { get; }
    public string? ErrCode { get; }
    public string? ErrMessage { get; }
    public int Status { get; }

    /// <summary>Seconds a client should wait before retrying, sent as <c>Retry-After</c>.</summary>
    public int? RetryAfterSeconds { get; init; }

    /// <summary>Shorthand for an error with one placeholder.</summary>
    public static AtelierException With(ErrorCode code, string name, string value, int? status = null) =>
        new(code, new Dictionary<string, string> { [name] = value }, status: status);

    /// <summary><c>p_common_inputinvalid</c> naming the field and what is wrong with it (409 for a name taken, 404 for one that is not there).</summary>
    public static AtelierException InvalidInput(string field, string problem, int? status = null) =>
        new(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"{field}: {problem}" }, status: status);
}
