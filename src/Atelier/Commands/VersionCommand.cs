using System.CommandLine;
using System.Reflection;

namespace Atelier.Commands;

/// <summary><c>atelier version</c>: what <c>atelier --version</c> prints.</summary>
internal sealed class VersionCommand : Command
{
    public VersionCommand()
        : base("version", "Print the version (as --version does)")
    {
        SetAction(_ =>
        {
            Console.WriteLine(Text);
            return ExitCodes.Ok;
        });
    }

    public static string Text { get; } =
        typeof(VersionCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(VersionCommand).Assembly.GetName().Version?.ToString() ?? "unknown";
}
