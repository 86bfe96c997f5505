using Atelier.Core.Agents;

namespace Atelier.Core.Tests.Agents;

/// <summary>The autoscaler's rule, step by step: up at once, down after the window, to zero after the idle seconds, capped by capacity.</summary>
public class ScaleRuleTests
{
    private static readonly DateTime T0 = new(2026, 11, 29, 12, 0, 0, DateTimeKind.Utc);

    private static readonly ScaleRule.Template Quick = new(MinReplicas: 0, MaxReplicas: 8, TargetBusySlots: 0, ScaleUpWindowSeconds: 0,
        ScaleDownWindowSeconds: 30, IdleSecondsBeforeZero: 120);

    private static ScaleRule.Input At(double seconds, int queued, int running, int current, ScaleRule.Decision? last = null, int slots = 2, int available = 100) =>
        new(T0.AddSeconds(seconds), queued, running, slots, current, available, last?.UpSince, last?.DownSince, last?.LastBusyAt);

    [Fact]
    public void Demand_Up_AtOnce_RoundedUpBySlotsPerReplica_WithinMax()
    {
        var d = ScaleRule.Decide(Quick, At(0, queued: 5, running: 0, current: 0));
        Assert.Equal(3, d.To); // ⌈5 / 2⌉
        Assert.StartsWith("up", d.Reason, StringComparison.Ordinal);
        Assert.Equal(8, ScaleRule.Decide(Quick, At(0, queued: 100, running: 0, current: 0)).To);
    }

    [Fact]
    public void TargetBusySlots_BelowTheSlots_LeavesHeadroom()
    {
        var t = Quick with { TargetBusySlots = 1 };
        Assert.Equal(5, ScaleRule.Decide(t, At(0, queued: 3, running: 2, current: 0)).To);
    }

    [Fact]
    public void Down_WaitsForTheWindow_ThenApplies()
    {
        var first = ScaleRule.Decide(Quick, At(0, queued: 0, running: 2, current: 4));
        Assert.Equal(4, first.To);
        Assert.Equal(T0, first.DownSince);
        var during = ScaleRule.Decide(Quick, At(29, queued: 0, running: 2, current: 4, first));
        Assert.Equal(4, during.To);
        var after = ScaleRule.Decide(Quick, At(30, queued: 0, running: 2, current: 4, during));
        Assert.Equal(1, after.To);
        Assert.Null(after.DownSince);
    }

    [Fact]
    public void NewDemand_DuringTheDownWindow_StartsItAgain()
    {
        var first = ScaleRule.Decide(Quick, At(0, queued: 0, running: 2, current: 4));
        var back = ScaleRule.Decide(Quick, At(10, queued: 6, running: 2, current: 4, first));
        Assert.Equal(4, back.To);
        Assert.Null(back.DownSince);
    }

    [Fact]
    public void Idle_KeepsOneReplica_UntilTheIdleSeconds_ThenZero()
    {
        var busy = ScaleRule.Decide(Quick, At(0, queued: 0, running: 1, current: 1));
        Assert.Equal(T0, busy.LastBusyAt);
        var idle = ScaleRule.Decide(Quick, At(60, queued: 0, running: 0, current: 1, busy));
        Assert.Equal(1, idle.To);
        Assert.Equal(T0, idle.LastBusyAt);
        var gone = ScaleRule.Decide(Quick, At(120, queued: 0, running: 0, current: 1, idle));
        Assert.Equal(0, gone.To);
        Assert.StartsWith("to zero", gone.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Minimum_IsKeptWithoutDemand()
    {
        var t = Quick with { MinReplicas = 2 };
        Assert.Equal(2, ScaleRule.Decide(t, At(0, queued: 0, running: 0, current: 0)).To);
        Assert.Equal(2, ScaleRule.Decide(t, At(1000, queued: 0, running: 0, current: 2)).To);
    }

    [Fact]
    public void UpWindow_DelaysTheStep_UntilTheNeedHasLasted()
    {
        var t = Quick with { ScaleUpWindowSeconds = 10 };
        var first = ScaleRule.Decide(t, At(0, queued: 4, running: 0, current: 1));
        Assert.Equal(1, first.To);
        var later = ScaleRule.Decide(t, At(10, queued: 4, running: 0, current: 1, first));
        Assert.Equal(2, later.To);
    }

    [Fact]
    public void Capacity_CapsTheStep_AndSaysSo()
    {
        var d = ScaleRule.Decide(Quick, At(0, queued: 20, running: 0, current: 1, available: 3));
        Assert.Equal(3, d.To);
        Assert.Equal(8, d.Wanted);
        Assert.Contains("capped at 3", d.Reason, StringComparison.Ordinal);
        // Capacity taken away brings the unit down at once.
        Assert.Equal(0, ScaleRule.Decide(Quick, At(0, queued: 20, running: 0, current: 2, available: 0)).To);
    }
}
