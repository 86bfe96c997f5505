using System.Text.RegularExpressions;

namespace Atelier.Engine.Text;

/// <summary>One of A1111's extra networks named in a prompt: <c>&lt;lora:name:0.8&gt;</c> is kind <c>lora</c>, arguments <c>name</c>, <c>0.8</c>.</summary>
public sealed record ExtraNetwork(string Kind, IReadOnlyList<string> Arguments)
{
    public string Name => Arguments.Count > 0 ? Arguments[0] : "";
}

/// <summary>
/// A1111's extra-network syntax (<c>extra_networks.parse_prompt</c>): every <c>&lt;kind:arguments&gt;</c> is taken out
/// of the prompt before it is encoded; the infotext keeps the prompt as written.
/// </summary>
public static partial class ExtraNetworks
{
    [GeneratedRegex(@"<(\w+):([^>]+)>")]
    private static partial Regex Syntax();

    /// <summary>The prompt without its extra networks, and the networks in the order they appear.</summary>
    public static (string Prompt, IReadOnlyList<ExtraNetwork> Networks) Strip(string prompt)
    {
        var found = new List<ExtraNetwork>();
        var text = Syntax().Replace(prompt, m =>
        {
            found.Add(new ExtraNetwork(m.Groups[1].Value, m.Groups[2].Value.Split(':')));
            return "";
        });
        return (text, found);
    }
}
