using Atelier.Core.Agents;

namespace Atelier.Bench.Autoscale;

/// <summary>
/// The bursty day: a load curve in busy slots (a diurnal base plus bursts) turned into job arrivals by a
/// non-homogeneous Poisson process (thinning), all from one seed.
/// </summary>
internal sealed class Day
{
    public const double Seconds = 86_400;

    private readonly List<Burst> _bursts;

    public Day(int seed, double nightSlots, double afternoonSlots, int bursts, double burstMinSlots, double burstMaxSlots)
    {
        Seed = seed;
        NightSlots = nightSlots;
        AfternoonSlots = afternoonSlots;
        var random = new Random(seed);
        _bursts = [];
        for (var i = 0; i < bursts; i++)
        {
            // Between 07:00 and 23:00, 2 to 15 minutes each, on top of whatever the hour brings.
            var start = (7 * 3600) + (random.NextDouble() * 16 * 3600);
            var length = (2 * 60) + (random.NextDouble() * 13 * 60);
            var extra = burstMinSlots + (random.NextDouble() * (burstMaxSlots - burstMinSlots));
            _bursts.Add(new Burst(start, start + length, extra));
        }

        _bursts.Sort((a, b) => a.Start.CompareTo(b.Start));
    }

    public int Seed { get; }

    public double NightSlots { get; }

    public double AfternoonSlots { get; }

    public IReadOnlyList<Burst> Bursts => _bursts;

    public double MaxLoad => AfternoonSlots + _bursts.Sum(b => b.ExtraSlots);

    /// <summary>Busy slots the day asks for at <paramref name="t"/> seconds after midnight: lowest at 04:00, highest at 16:00, plus any burst.</summary>
    public double Load(double t)
    {
        var phase = (t - (4 * 3600)) / Seconds * 2 * Math.PI;
        var load = NightSlots + ((AfternoonSlots - NightSlots) * (1 - Math.Cos(phase)) / 2);
        foreach (var b in _bursts)
        {
            if (t >= b.Start && t < b.End)
            {
                load += b.ExtraSlots;
            }
        }

        return load;
    }

    /// <summary>Arrival times (seconds) of jobs of <paramref name="jobSeconds"/> each, so that they ask for <see cref="Load"/> slots on average.</summary>
    public double[] Arrivals(double jobSeconds)
    {
        var random = new Random(Seed + 1);
        var peakRate = MaxLoad / jobSeconds;
        var list = new List<double>();
        var t = 0.0;
        while (true)
        {
            t += -Math.Log(1 - random.NextDouble()) / peakRate;
            if (t >= Seconds)
            {
                break;
            }

            if (random.NextDouble() * peakRate < Load(t) / jobSeconds)
            {
                list.Add(t);
            }
        }

        return [.. list];
    }

    internal sealed record Burst(double Start, double End, double ExtraSlots);
}

/// <summary>What one run of the day gave.</summary>
internal sealed record SimResult(string Name, double ReplicaSeconds, int Jobs, double P50Wait, double P99Wait, double P999Wait, double MaxWait, int MaxReplicas,
    int ReplicaStarts, int Decisions, double MeanReplicas);

/// <summary>
/// A discrete-event simulation of one unit over the day: jobs arrive, wait in one FIFO queue, run on a free slot of a
/// ready replica for a fixed time; the autoscaler looks every <c>interval</c> seconds and calls the real
/// <see cref="ScaleRule.Decide"/> with the queue and the running jobs it sees, exactly as <see cref="Autoscaler"/> builds
/// its input. A new replica serves after the cold start and costs from the moment it is asked for. Scaling down takes
/// replicas that are still starting first, then idle ones, then busy ones, which finish their jobs (taking no new
/// ones) and cost until they are done.
/// </summary>
internal static class Simulation
{
    private sealed class Replica(double start, double readyAt)
    {
        public double Start { get; } = start;

        public double ReadyAt { get; } = readyAt;

        public bool Ready { get; set; }

        public int Busy { get; set; }

        public bool Draining { get; set; }

        public double? End { get; set; }
    }

    public static SimResult Autoscaled(string name, double[] arrivals, double jobSeconds, double coldStartSeconds, int slots, double interval, int capacity,
        ScaleRule.Template template) =>
        Run(name, arrivals, jobSeconds, coldStartSeconds, slots, interval, capacity, template, fixedReplicas: 0);

    public static SimResult Fixed(string name, double[] arrivals, double jobSeconds, int slots, int replicas) =>
        Run(name, arrivals, jobSeconds, 0, slots, interval: 0, capacity: replicas, template: null, fixedReplicas: replicas);

    private static SimResult Run(string name, double[] arrivals, double jobSeconds, double coldStartSeconds, int slots, double interval, int capacity,
        ScaleRule.Template? template, int fixedReplicas)
    {
        var midnight = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        // The replicas that exist now (ended ones leave the list and add their cost).
        var replicas = new List<Replica>();
        var cost = 0.0;
        for (var i = 0; i < fixedReplicas; i++)
        {
            replicas.Add(new Replica(0, 0) { Ready = true });
        }

        void End(Replica r, double now)
        {
            r.End = now;
            cost += Math.Max(0, Math.Min(now, Day.Seconds) - Math.Min(r.Start, Day.Seconds));
            replicas.Remove(r);
        }

        // Completions and replicas becoming ready, by time; arrivals are read in order from the array; ticks every interval.
        var events = new PriorityQueue<(bool Ready, Replica Replica), double>();
        var queue = new Queue<double>();
        var waits = new double[arrivals.Length];
        var started = 0;
        var next = 0;
        var tick = template is null ? double.PositiveInfinity : 0.0;
        DateTime? upSince = null, downSince = null, lastBusy = null;
        var starts = fixedReplicas;
        var decisions = 0;
        var most = fixedReplicas;
        var running = 0;

        void Dispatch(double now)
        {
            while (queue.Count > 0)
            {
                Replica? free = null;
                foreach (var r in replicas)
                {
                    // The busiest replica with a free slot, so that idle ones stay idle and can go.
                    if (r.Ready && !r.Draining && r.Busy < slots && (free is null || r.Busy > free.Busy))
                    {
                        free = r;
                    }
                }

                if (free is null)
                {
                    return;
                }

                waits[started++] = now - queue.Dequeue();
                free.Busy++;
                running++;
                events.Enqueue((false, free), now + jobSeconds);
            }
        }

        while (next < arrivals.Length || queue.Count > 0 || events.Count > 0)
        {
            var tArrival = next < arrivals.Length ? arrivals[next] : double.PositiveInfinity;
            var tEvent = events.TryPeek(out _, out var te) ? te : double.PositiveInfinity;
            // Past the day, the autoscaler keeps looking only while there is work left.
            var tTick = tick <= Day.Seconds || queue.Count > 0 || running > 0 ? tick : double.PositiveInfinity;
            var now = Math.Min(tArrival, Math.Min(tEvent, tTick));
            if (double.IsPositiveInfinity(now))
            {
                break;
            }

            if (tEvent == now)
            {
                var (ready, r) = events.Dequeue();
                if (ready)
                {
                    if (r.End is null)
                    {
                        r.Ready = true;
                    }
                }
                else
                {
                    r.Busy--;
                    running--;
                    if (r.Draining && r.Busy == 0)
                    {
                        End(r, now);
                    }
                }

                Dispatch(now);
            }
            else if (tArrival == now)
            {
                queue.Enqueue(now);
                next++;
                Dispatch(now);
            }
            else
            {
                // As the autoscaler builds its input: the unit's replicas (not those draining), the agent's queued and
                // running jobs, the pool's capacity for the unit.
                var current = replicas.Count(r => !r.Draining);
                var decision = ScaleRule.Decide(template!, new ScaleRule.Input(midnight.AddSeconds(now), queue.Count, running, slots, current,
                    capacity, upSince, downSince, lastBusy));
                upSince = decision.UpSince;
                downSince = decision.DownSince;
                lastBusy = decision.LastBusyAt;
                if (decision.To != current)
                {
                    decisions++;
                }

                for (var i = current; i < decision.To; i++)
                {
                    var r = new Replica(now, now + coldStartSeconds);
                    replicas.Add(r);
                    events.Enqueue((true, r), r.ReadyAt);
                    starts++;
                }

                var surplus = current - decision.To;
                foreach (var r in replicas.Where(r => !r.Draining).OrderBy(r => r.Ready ? 1 : 0).ThenBy(r => r.Busy).ThenByDescending(r => r.Start)
                             .Take(Math.Max(0, surplus)).ToList())
                {
                    if (r.Busy == 0)
                    {
                        End(r, now);
                    }
                    else
                    {
                        r.Draining = true;
                    }
                }

                most = Math.Max(most, replicas.Count);
                tick += interval;
                Dispatch(now);
            }
        }

        // Cost over the day: a fixed fleet pays for every second of it; a replica of the autoscaled unit from the moment
        // it is asked for to its end (those left at the end of the day, to midnight).
        foreach (var r in replicas.ToList())
        {
            End(r, Day.Seconds);
        }

        Array.Sort(waits, 0, started);
        return new SimResult(name, cost, started, Percentile(waits, started, 0.50), Percentile(waits, started, 0.99), Percentile(waits, started, 0.999),
            started == 0 ? 0 : waits[started - 1], most, starts, decisions, cost / Day.Seconds);
    }

    private static double Percentile(double[] sorted, int count, double p) =>
        count == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * count) - 1, 0, count - 1)];
}
