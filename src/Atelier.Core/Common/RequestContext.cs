namespace Atelier.Core.Common;

/// <summary>What one request carries through the layers: its id, its caller, its operator, its tenant.</summary>
public sealed class RequestContext
{
    /// <summary>Our id of the request (always made by the server; the one in the envelope and the audit log).</summary>
    public string RequestId { get; set; } = "";
    /// <summary>The id the client sent in <c>X-Request-Id</c>, when sane: kept beside ours, never instead of it.</summary>
    public string? ClientRequestId { get; set; }
    public Caller? Caller { get; set; }
    /// <summary>The operator named by the request (the person acting), required on every mutating admin call.</summary>
    public string? OperatorId { get; set; }
    /// <summary>The tenant the request acts in, once resolved.</summary>
    public string? TenantId { get; set; }
    public bool English { get; set; }
}
