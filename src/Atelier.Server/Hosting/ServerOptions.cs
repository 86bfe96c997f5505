using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Hosting;

/// <summary>Configuration section <c>Atelier:Server</c>.</summary>
public sealed partial class ServerOptions
{
    public const string SectionName = "Atelier:Server";

    /// <summary>Where the server listens. Loopback by default: exposing it is a decision, not an accident.</summary>
    [Required]
    public string Urls { get; set; } = "http://127.0.0.1:5080";

    /// <summary>The folder for the default SQLite file, the local object store and the default master key file.</summary>
    [Required]
    public string DataDirectory { get; set; } = "data";

    /// <summary>The largest JSON request body; bigger bodies are answered 413 in the envelope.</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public long MaxJsonBodyBytes { get; set; } = 1024 * 1024;

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<ServerOptions>;
}
