using System.Reflection;
using System.Text.RegularExpressions;
using Atelier.Contracts.Errors;

namespace Atelier.Contracts.Tests;

public partial class ErrCodesTests
{
    private static Dictionary<string, string> Constants() =>
        typeof(ErrCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral)
            .ToDictionary(f => f.Name, f => (string)f.GetRawConstantValue()!);

    [Fact]
    public void ErrCodes_AreSnakeCaseAndDistinct()
    {
        var codes = Constants();
        Assert.NotEmpty(codes);
        Assert.All(codes.Values, c => Assert.Matches("^[a-z][a-z0-9_]*$", c));
        Assert.Equal(codes.Count, codes.Values.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void ApiDocs_ListEveryErrCode_AndNothingElse()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Atelier.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        var doc = File.ReadAllText(Path.Combine(dir.FullName, "docs", "api.md"));
        var start = doc.IndexOf("### Secondary codes (`errCode`)", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/api.md has no secondary codes section");
        var end = doc.IndexOf("\n## ", start, StringComparison.Ordinal);
        var listed = TableRow().Matches(doc[start..(end < 0 ? doc.Length : end)]).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        var codes = Constants().Values.ToHashSet(StringComparer.Ordinal);
        Assert.Empty(codes.Except(listed));
        Assert.Empty(listed.Except(codes));
    }

    [GeneratedRegex(@"^\| `([a-z0-9_]+)` \|", RegexOptions.Multiline)]
    private static partial Regex TableRow();
}
