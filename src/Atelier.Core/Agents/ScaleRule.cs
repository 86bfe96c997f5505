namespace Atelier.Core.Agents;

/// <summary>
/// The autoscaler's rule for one unit, a pure function of what it sees (so the simulation in bench/autoscale runs the
/// very same code):
/// <list type="number">
/// <item>demand = the agent's queued + running jobs (the unit's share of them when the agent has several units);</item>
/// <item>wanted = ⌈demand ÷ busy slots per replica⌉ (the template's target, or every slot of the instance type), within the template's min and max;</item>
/// <item>with no demand and a minimum of 0, one replica stays until the agent has been idle <c>IdleSecondsBeforeZero</c>, then none;</item>
/// <item>up once wanted has been above the replicas for the scale-up window (0: at once); down once it has been below for the scale-down window;</item>
/// <item>never past the replicas the pool's share has left for the unit.</item>
/// </list>
/// </summary>
public static class ScaleRule
{
    public sealed record Template(int MinReplicas, int MaxReplicas, double TargetBusySlots, int ScaleUpWindowSeconds, int ScaleDownWindowSeconds,
        int IdleSecondsBeforeZero);

    public sealed record Input(DateTime Now, int Queued, int Running, int SlotsPerReplica, int Current, int Available, DateTime? UpSince, DateTime? DownSince,
        DateTime? LastBusyAt);

    public sealed record Decision(int To, int Wanted, string Reason, DateTime? UpSince, DateTime? DownSince, DateTime? LastBusyAt, double BusyPerReplica);

    public static Decision Decide(Template t, Input i)
    {
        var demand = Math.Max(0, i.Queued) + Math.Max(0, i.Running);
        var busy = t.TargetBusySlots > 0 ? Math.Min(t.TargetBusySlots, i.SlotsPerReplica) : i.SlotsPerReplica;
        busy = Math.Max(busy, 0.01);
        var lastBusy = demand > 0 ? i.Now : i.LastBusyAt;
        var wanted = Math.Clamp((int)Math.Ceiling(demand / busy), t.MinReplicas, t.MaxReplicas);
        string reason;
        var toZeroNow = false;
        if (wanted == 0 && i.Current > 0)
        {
            var idle = lastBusy is null ? TimeSpan.MaxValue : i.Now - lastBusy.Value;
            if (idle < TimeSpan.FromSeconds(t.IdleSecondsBeforeZero))
            {
                wanted = 1;
            }
            else
            {
                toZeroNow = true;
            }
        }

        var up = i.UpSince;
        var down = i.DownSince;
        int to;
        if (wanted > i.Current)
        {
            down = null;
            up ??= i.Now;
            var ready = i.Now - up.Value >= TimeSpan.FromSeconds(t.ScaleUpWindowSeconds);
            to = ready ? wanted : i.Current;
            reason = ready ? $"up: {demand} jobs need {wanted} replicas at {Fmt(busy)} busy slots each" : $"up after the {t.ScaleUpWindowSeconds} s window";
        }
        else if (wanted < i.Current)
        {
            up = null;
            down ??= i.Now;
            var ready = toZeroNow || i.Now - down.Value >= TimeSpan.FromSeconds(t.ScaleDownWindowSeconds);
            to = ready ? wanted : i.Current;
            reason = !ready ? $"down after the {t.ScaleDownWindowSeconds} s window"
                : toZeroNow ? $"to zero: idle {t.IdleSecondsBeforeZero} s"
                : $"down: {demand} jobs need {wanted} replicas";
        }
        else
        {
            up = null;
            down = null;
            to = i.Current;
            reason = "steady";
        }

        var available = Math.Max(0, i.Available);
        if (to > available)
        {
            reason += $"; capped at {available} by the pool's capacity";
            to = available;
        }

        if (to == i.Current)
        {
            // Applied or not, a window that has run out starts again only when the need changes.
            if (to == wanted)
            {
                up = null;
                down = null;
            }
        }
        else
        {
            up = null;
            down = null;
        }

        return new Decision(to, wanted, reason, up, down, lastBusy, busy);
    }

    private static string Fmt(double v) => v.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture);
}
