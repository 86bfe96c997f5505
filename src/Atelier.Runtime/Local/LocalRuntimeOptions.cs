namespace Atelier.Runtime.Local;

/// <summary>Settings of the <c>local</c> runtime backend (child processes on this machine).</summary>
public sealed class LocalRuntimeOptions
{
    /// <summary>Where the backend keeps its pid files (<c>instances/</c>) and instance logs (<c>logs/</c>). Required.</summary>
    public string StateDirectory { get; set; } = "";

    /// <summary>How long an instance may take to answer its health path with a 2xx.</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a stopping instance has between SIGTERM and SIGKILL of its process group.</summary>
    public TimeSpan StopGrace { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often idle instances are looked for (measured on the backend's <see cref="TimeProvider"/>).</summary>
    public TimeSpan IdleCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The first wait before a crashed warm instance is replaced; it doubles on each further failure.</summary>
    public TimeSpan RestartBackoffInitial { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between replacement attempts of a crashing warm instance.</summary>
    public TimeSpan RestartBackoffMax { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The size at which an instance's log file is rotated (one previous file, <c>.log.1</c>, is kept); 0 writes no log files.</summary>
    public long LogFileMaxBytes { get; set; } = 1024 * 1024;
}
