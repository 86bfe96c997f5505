namespace Atelier.Server.Hosting;

/// <summary>The configuration cannot be used: <see cref="Problems"/> names each invalid key and why, and so does the message.</summary>
public sealed class InvalidConfigurationException(IReadOnlyList<string> problems)
    : InvalidOperationException($"The configuration is invalid ({problems.Count} {(problems.Count == 1 ? "problem" : "problems")}):\n" +
                                string.Join('\n', problems.Select(p => "  " + p)))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
