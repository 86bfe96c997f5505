using Atelier.Contracts.Errors;
using Atelier.Core.Common;

namespace Atelier.Core.Tests.Common;

public class ValidateTests
{
    [Fact]
    public void Name_WithSpaceAround_IsTrimmed()
    {
        Assert.Equal("studio", Validate.Name("  studio \t", "name"));
    }

    [Theory]
    [InlineData(null, "name: is required")]
    [InlineData("   ", "name: is required")]
    [InlineData("line\nbreak", "name: contains control characters")]
    public void Name_EmptyOrWithControlCharacters_IsRefused(string? value, string problem)
    {
        Assert.Equal(problem, Invalid.Input(() => Validate.Name(value, "name")));
    }

    [Fact]
    public void Name_OverTheMaximum_IsRefused_AtTheMaximum_Kept()
    {
        Assert.Equal(new string('a', Validate.NameMax), Validate.Name(new string('a', Validate.NameMax), "name"));
        Assert.Equal($"name: is longer than {Validate.NameMax} characters", Invalid.Input(() => Validate.Name(new string('a', Validate.NameMax + 1), "name")));
    }

    [Theory]
    [InlineData("acct-1.team_a@example")]
    [InlineData("A")]
    public void Identifier_LettersDigitsAndTheFourMarks_AreKept(string value)
    {
        Assert.Equal(value, Validate.Identifier(value, "uid"));
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("slash/")]
    [InlineData("ünïcode")]
    public void Identifier_OtherCharacters_AreRefused(string value)
    {
        Assert.Equal("uid: may hold only letters, digits and . _ - @", Invalid.Input(() => Validate.Identifier(value, "uid")));
    }

    [Fact]
    public void EnumOrNull_NameInAnyCase_IsParsed_NumbersAndUnknownNamesAreNot()
    {
        Assert.Equal(DayOfWeek.Monday, Validate.EnumOrNull<DayOfWeek>("MONDAY", "day"));
        Assert.Null(Validate.EnumOrNull<DayOfWeek>(null, "day"));
        // Enum.TryParse would take "1" and "-1"; a query value must name a member.
        foreach (var bad in new[] { "1", "-1", "someday", "" })
        {
            Assert.StartsWith("day: must be one of sunday, monday", Invalid.Input(() => Validate.EnumOrNull<DayOfWeek>(bad, "day")), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void PageRequest_Nothing_IsTheFirstPageOfTheDefaultSize()
    {
        var page = PageRequest.From(null, null);
        Assert.Equal(new PageRequest(1, PageRequest.DefaultPageSize), page);
        Assert.Equal(0, page.Skip);
        Assert.Equal(200, PageRequest.From(3, 100).Skip);
    }

    [Fact]
    public void PageRequest_SizeOverTheCap_IsPageSizeExceedLimit_NotInvalidInput()
    {
        var e = Assert.Throws<AtelierException>(() => PageRequest.From(1, PageRequest.MaxPageSize + 1));
        Assert.Equal(ErrorCatalog.b_query_pagesizeexceedlimit, e.Code);
        Assert.Equal("page_size_cap", e.ErrCode);
        Assert.Equal(PageRequest.MaxPageSize, PageRequest.From(1, PageRequest.MaxPageSize).PageSize);
    }

    [Theory]
    [InlineData(1, 0, "pageSize: must be at least 1")]
    [InlineData(0, 10, "pageNumber: must be between 1 and 1000000")]
    [InlineData(1_000_001, 10, "pageNumber: must be between 1 and 1000000")]
    public void PageRequest_Nonsense_IsInvalidInputNamingTheField(int number, int size, string problem)
    {
        Assert.Equal(problem, Invalid.Input(() => PageRequest.From(number, size)));
    }
}
