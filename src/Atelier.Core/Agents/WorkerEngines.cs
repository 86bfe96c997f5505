using System.Text.RegularExpressions;

namespace Atelier.Core.Agents;

/// <summary>What an agent version may say about its workers: the engine (as <c>atelier worker --engine</c> takes it) and extra arguments.</summary>
public static partial class WorkerEngines
{
    /// <summary>Options the platform sets itself for a unit's workers.</summary>
    public static readonly string[] ReservedOptions = ["--server", "--token", "--engine", "--slots", "--id", "--parent-pid", "--health-port"];

    public static bool IsValid(string engine) =>
        engine == "builtin" || engine == "noop" || (engine.StartsWith("noop=", StringComparison.Ordinal) && int.TryParse(engine.AsSpan(5), out var ms) && ms >= 0)
        || ((engine.StartsWith("a1111=", StringComparison.Ordinal) || engine.StartsWith("comfyui=", StringComparison.Ordinal))
            && Uri.TryCreate(engine[(engine.IndexOf('=') + 1)..], UriKind.Absolute, out var u) && u.Scheme is "http" or "https");

    public static bool Reserved(string arg) => ReservedOptions.Any(o => arg == o || arg.StartsWith(o + "=", StringComparison.Ordinal));

    public static bool IsEnvName(string name) => EnvName().IsMatch(name);

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
    private static partial Regex EnvName();
}
