namespace Atelier.Data;

/// <summary>Configuration section <c>Atelier:Database</c>.</summary>
public sealed class DatabaseOptions
{
    public const string Section = "Atelier:Database";

    /// <summary><c>sqlite</c> (default) or <c>postgres</c>.</summary>
    public string Provider { get; set; } = "sqlite";

    /// <summary>Defaults to a SQLite file under the data directory.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>How long SQLite waits on a locked database before giving up (PRAGMA busy_timeout).</summary>
    public int SqliteBusyTimeoutMs { get; set; } = 5000;
}
