using Atelier.Core.Security;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Tests.Security;

public class SafetyPatternsTests
{
    private static SafetyPatterns With(params string[] platform) =>
        new(Options.Create(new SafetyOptions { Patterns = [.. platform], PatternBudgetMilliseconds = 500 }), TimeProvider.System);

    [Theory]
    [InlineData(@"(\w+)\s+\1")] // backreference
    [InlineData(@"blood(?=bath)")] // lookahead
    [InlineData(@"(?<!good )blood")] // lookbehind
    [InlineData(@"(?>a+)b")] // atomic group
    public void CheckNew_PatternThatNeedsBacktracking_IsRefusedNamingPatterns(string pattern)
    {
        Assert.StartsWith($"patterns: '{pattern}' uses what safety patterns cannot", Invalid.Input(() => SafetyPatterns.CheckNew(pattern)), StringComparison.Ordinal);
    }

    [Fact]
    public void CheckNew_TextThatIsNoRegularExpression_IsRefused()
    {
        Assert.StartsWith("patterns: '(unclosed' is not a regular expression", Invalid.Input(() => SafetyPatterns.CheckNew("(unclosed")), StringComparison.Ordinal);
    }

    [Fact]
    public void CheckNew_CatastrophicButLinearPattern_IsAccepted_AndAnswersWithinTheBudget()
    {
        // (a+)+$ takes a backtracking engine exponential time on "aaa…ab"; without backtracking it is linear, and the
        // budget (which a backtracking match of 30,000 characters would overrun, failing closed) is never reached.
        SafetyPatterns.CheckNew("(a+)+$");
        var patterns = With("(a+)+$");
        Assert.False(patterns.AnyMatch(patterns.Platform, [new string('a', 30_000) + "b"]));
        Assert.True(patterns.AnyMatch(patterns.Platform, [new string('a', 30_000)]));
    }

    [Fact]
    public void AnyMatch_IgnoresCase_AndLooksAtEveryText()
    {
        var patterns = With(@"blood\s*bath");
        Assert.True(patterns.AnyMatch(patterns.Platform, ["a quiet lake", "BLOOD  Bath"])); // the negative prompt counts too
        Assert.False(patterns.AnyMatch(patterns.Platform, ["a quiet lake", ""]));
    }

    [Fact]
    public void Platform_PatternKeptFromBeforeTheRule_StillMatchesWithBacktracking()
    {
        // The platform's own patterns are not saved through CheckNew: one that needs backtracking still works.
        var patterns = With(@"(\w+) \1");
        Assert.True(patterns.AnyMatch(patterns.Platform, ["say bye bye"]));
        Assert.False(patterns.AnyMatch(patterns.Platform, ["say bye now"]));
    }

    [Fact]
    public void Of_SameStoredList_IsCompiledOnce_AChangedListAgain()
    {
        var patterns = With();
        var first = patterns.Of("ten_a", "v1", ["lake"]);
        Assert.Same(first, patterns.Of("ten_a", "v1", ["lake"]));
        var changed = patterns.Of("ten_a", "v2", ["ocean"]);
        Assert.NotSame(first, changed);
        Assert.True(patterns.AnyMatch(changed, ["an Ocean view"]));
        Assert.False(patterns.AnyMatch(changed, ["a lake view"]));
        patterns.Forget("ten_a");
        Assert.NotSame(changed, patterns.Of("ten_a", "v2", ["ocean"]));
    }
}
