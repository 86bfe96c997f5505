namespace Atelier.Core.Jobs;

/// <summary>
/// Wakes waiting lease requests when a job is queued: in process here, across replicas through <see cref="JobListener"/>.
/// One queued job wakes one waiting slot, not all of them (each woken slot runs a claim statement, so waking sixteen
/// for one job cost fifteen empty claims): the longest-waiting slot that may take the job (its lane is the job's agent,
/// else the shared lane), one that holds the job's model first. A slot that was woken but leaves with another job, or
/// finds nothing (another claim had the row locked for a moment), passes the wake on once. Events that may concern
/// many jobs (expired leases back in the queue, a lost notification connection) wake everyone.
/// </summary>
public sealed class JobSignal(TimeProvider clock) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly LinkedList<Waiter> _waiting = new();

    /// <summary>A wake: for a job of <paramref name="Agent"/> (null: any) needing <paramref name="Model"/>; how often it was passed on.</summary>
    public sealed record Wake(string? Agent, string? Model, int Hops);

    /// <summary>This signal's name in the notifications its replica sends, so its own listener does not wake a second slot.</summary>
    public string Origin { get; } = Guid.NewGuid().ToString("N")[..16];

    /// <summary>
    /// Registers a slot before it looks at the queue, so a job queued between the look and the wait is not missed.
    /// <paramref name="lane"/>: the agent whose jobs the slot takes, <see cref="JobQueue.SharedLane"/> for the shared
    /// workers, null for any; <paramref name="model"/>: the model it holds.
    /// </summary>
    public Waiter Register(string? lane, string? model)
    {
        var waiter = new Waiter(this, lane, model);
        lock (_gate)
        {
            waiter.Node = _waiting.AddLast(waiter);
        }

        return waiter;
    }

    /// <summary>One job of <paramref name="agent"/> was queued: wakes one slot that may take it.</summary>
    public void Pulse(string agent, string? model) => Send(new Wake(agent, model, 0));

    /// <summary>Wakes every waiting slot (jobs of any agent may be waiting).</summary>
    public void PulseAll()
    {
        List<Waiter> all;
        lock (_gate)
        {
            all = [.. _waiting];
            _waiting.Clear();
            foreach (var w in all)
            {
                w.Node = null;
            }
        }

        foreach (var w in all)
        {
            w.Fire(new Wake(null, null, 0));
        }
    }

    /// <summary>The claim after <paramref name="wake"/> found nothing: passes it on once (to another slot, the longest waiting).</summary>
    public void Retry(Wake wake)
    {
        if (wake.Hops < 1 && wake.Agent is not null)
        {
            Send(wake with { Hops = wake.Hops + 1 });
        }
    }

    private void Send(Wake wake)
    {
        Waiter? chosen = null;
        lock (_gate)
        {
            Waiter? lane = null;
            Waiter? shared = null;
            for (var n = _waiting.First; n is not null; n = n.Next)
            {
                var w = n.Value;
                var exact = w.Lane is null || w.Lane == wake.Agent;
                if (exact && wake.Model is not null && w.Model == wake.Model)
                {
                    chosen = w;
                    break;
                }

                if (exact)
                {
                    lane ??= w;
                }
                else if (w.Lane == JobQueue.SharedLane)
                {
                    shared ??= w;
                }
            }

            chosen ??= lane ?? shared;
            if (chosen is not null)
            {
                _waiting.Remove(chosen.Node!);
                chosen.Node = null;
            }
        }

        chosen?.Fire(wake);
    }

    private void Leave(Waiter waiter)
    {
        lock (_gate)
        {
            if (waiter.Node is not null)
            {
                _waiting.Remove(waiter.Node);
                waiter.Node = null;
            }
        }
    }

    public void Dispose() => PulseAll();

    /// <summary>A slot waiting for a job; dispose it when the slot stops waiting (a wake it did not use is passed on).</summary>
    public sealed class Waiter(JobSignal signal, string? lane, string? model) : IDisposable
    {
        private readonly TaskCompletionSource<Wake> _woken = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private bool _used;

        internal LinkedListNode<Waiter>? Node { get; set; }

        public string? Lane { get; } = lane;

        public string? Model { get; } = model;

        internal void Fire(Wake wake) => _woken.TrySetResult(wake);

        /// <summary>The wake that ended the wait (the slot then looks again, which uses it), or null when the timeout did.</summary>
        public async Task<Wake?> WaitAsync(TimeSpan timeout, CancellationToken ct)
        {
            try
            {
                var wake = await _woken.Task.WaitAsync(timeout, signal._clock, ct);
                _used = true;
                return wake;
            }
            catch (TimeoutException)
            {
                signal.Leave(this);
                return null;
            }
        }

        public void Dispose()
        {
            signal.Leave(this);
            if (!_used && _woken.Task.IsCompletedSuccessfully && _woken.Task.Result is { Agent: not null } wake)
            {
                // Woken while it looked (and it found a job) or while it left: the job the wake was for is someone else's to take.
                signal.Send(wake);
            }
        }
    }

    private readonly TimeProvider _clock = clock;
}
