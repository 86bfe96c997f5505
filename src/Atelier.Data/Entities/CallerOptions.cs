namespace Atelier.Data.Entities;

/// <summary>
/// The AUTOMATIC1111 options a credential (an API token or a session) set with <c>POST /sdapi/v1/options</c>: only the
/// keys it set, as a JSON object; the rest are A1111's defaults. One row per credential.
/// </summary>
public sealed class CallerOptions : ITenantOwned
{
    public required string CredentialId { get; set; }
    public required string TenantId { get; set; }
    public required string OptionsJson { get; set; }
    public DateTime UpdatedAt { get; set; }
}
