using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Data;

/// <summary>Configuration section <c>Atelier:Database</c>.</summary>
public sealed partial class DatabaseOptions : IValidatableObject
{
    public const string SectionName = "Atelier:Database";

    /// <summary><c>sqlite</c> (default) or <c>postgres</c>.</summary>
    [Required]
    public string Provider { get; set; } = "sqlite";

    /// <summary>Unset with SQLite, a file under the data directory; PostgreSQL needs one.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>How long SQLite waits on a locked database before giving up (PRAGMA busy_timeout).</summary>
    [Range(0, 3_600_000)]
    public int SqliteBusyTimeoutMs { get; set; } = 5000;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (DatabaseProviders.Named(Provider) is null)
        {
            yield return new ValidationResult(
                $"{SectionName}:Provider: unknown provider '{Provider}'. Known providers: {string.Join(", ", DatabaseProviders.All.Select(p => p.Name))}.");
        }
        else if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            yield return new ValidationResult($"{SectionName}:ConnectionString: required with the {Provider} provider.");
        }
    }

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<DatabaseOptions>;
}
