using Atelier.Contracts.Errors;

namespace Atelier.Contracts.Tests;

public class ErrorCatalogTests
{
    /// <summary>The spec is carried by the repository: spec/error-codes.tsv (a copy of the seed table we were given).</summary>
    private static string SeedPath()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Atelier.slnx")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        var path = Path.Combine(dir.FullName, "spec", "error-codes.tsv");
        Assert.True(File.Exists(path), $"the seed table is missing at {path}");
        return path;
    }

    private static List<(string Code, string Message)> Seed() =>
        [.. File.ReadAllLines(SeedPath()).Skip(1).Where(l => l.Length > 0).Select(l => l.Split('\t')).Select(p => (p[0], p[1]))];

    [Fact]
    public void Catalog_EqualsSeedTable_CodeForCodeAndMessageForMessage()
    {
        var seed = Seed();
        Assert.Equal(109, seed.Count);
        Assert.Equal(seed.Count, ErrorCatalog.All.Count);
        for (var i = 0; i < seed.Count; i++)
        {
            Assert.Equal(seed[i].Code, ErrorCatalog.All[i].Code);
            Assert.Equal(seed[i].Message, ErrorCatalog.All[i].MessageZh);
        }
    }

    [Fact]
    public void Catalog_EveryCode_HasEnglishStatusAndMatchingPlaceholders()
    {
        foreach (var code in ErrorCatalog.All)
        {
            Assert.False(string.IsNullOrWhiteSpace(code.MessageEn), code.Code);
            Assert.InRange(code.Status, 400, 599);
            // p_ is the caller's mistake (4xx), s_ a service failure (5xx); b_ goes by meaning (a capacity or
            // downstream failure such as b_predict_predictfail is 5xx, the rest 4xx).
            switch (code.Code[0])
            {
                case 'p':
                    Assert.Equal(4, code.Status / 100);
                    break;
                case 's':
                    Assert.Equal(5, code.Status / 100);
                    break;
                default:
                    Assert.Equal('b', code.Code[0]);
                    break;
            }
            // The English text carries the same placeholders, so both languages show the same facts.
            var en = new ErrorCode(code.Code, code.Status, code.MessageEn, code.MessageEn).Placeholders;
            Assert.Equal(code.Placeholders.OrderBy(p => p), en.OrderBy(p => p));
        }

        Assert.Equal(ErrorCatalog.All.Count, ErrorCatalog.All.Select(c => c.Code).Distinct().Count());
    }

    [Fact]
    public void Format_FillsPlaceholders_InBothLanguages()
    {
        var values = new Dictionary<string, string> { ["Region"] = "cn-hangzhou", ["InstanceType"] = "gpu.a10", ["Subproject"] = "sp1" };
        Assert.Equal("计算单元不足,region:cn-hangzhou,instancetype:gpu.a10,subproject:sp1",
            ErrorCatalog.b_agent_computingunitnotinsufficient.Format(english: false, values));
        Assert.Equal("Not enough computing units, region:cn-hangzhou, instancetype:gpu.a10, subproject:sp1",
            ErrorCatalog.b_agent_computingunitnotinsufficient.Format(english: true, values));
        Assert.Equal(["Region", "InstanceType", "Subproject"], ErrorCatalog.b_agent_computingunitnotinsufficient.Placeholders);
    }

    [Fact]
    public void Format_MissingValue_LeavesPlaceholderEmpty()
    {
        Assert.Equal("角色不存在", ErrorCatalog.b_user_rolenotfound.Format(english: false, null));
    }
}
