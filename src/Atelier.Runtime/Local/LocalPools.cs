namespace Atelier.Runtime.Local;

/// <summary>A deployed function: its spec, one pool per revision, its manual scale. Guarded by the backend's lock.</summary>
internal sealed class FunctionState(FunctionSpec spec)
{
    /// <summary>Whatever a function asks, one machine runs at most this many of its instances.</summary>
    public const int InstanceCap = 64;

    public FunctionSpec Spec { get; set; } = spec;

    public Dictionary<string, RevisionPool> Pools { get; } = new(StringComparer.Ordinal);

    /// <summary>Instances kept warm per traffic-taking revision by <c>ScaleAsync</c>; 0 is request-driven.</summary>
    public int ManualScale { get; set; }

    /// <summary>ApplyAsync or ScaleAsync calls under way (the function reads as Deploying meanwhile).</summary>
    public int Operations { get; set; }

    public bool Deleted { get; set; }

    public int MaxInstances => Spec.MaxInstances <= 0 ? InstanceCap : Math.Min(Spec.MaxInstances, InstanceCap);

    public int InstanceCount => Pools.Values.Sum(pool => pool.Instances.Count);
}

/// <summary>The instances of one revision and the requests waiting for a slot on one, first come first served.</summary>
internal sealed class RevisionPool(FunctionState function, RevisionSpec spec)
{
    public FunctionState Function { get; } = function;

    public RevisionSpec Spec { get; set; } = spec;

    public string Name => Spec.Name;

    public bool TakesTraffic { get; set; }

    /// <summary>Starting and ready instances; one is removed the moment it is stopping or found dead.</summary>
    public List<LocalInstance> Instances { get; } = [];

    public LinkedList<Waiter> Waiters { get; } = new();

    /// <summary>Set once the revision left the spec (or the function was deleted): nothing starts for it any more.</summary>
    public bool Retired { get; set; }

    /// <summary>Why the last start of a warm instance failed; cleared when one starts.</summary>
    public string? LastFailure { get; set; }

    public int RestartAttempt { get; set; }

    public bool RestartPending { get; set; }

    public int Concurrency => Math.Max(1, Spec.InstanceConcurrency);

    /// <summary>Instances this revision keeps running whatever its traffic: the function's minimum or its manual scale, within its maximum.</summary>
    public int WarmTarget => TakesTraffic && !Retired ? Math.Min(Math.Max(Function.Spec.MinInstances, Function.ManualScale), Function.MaxInstances) : 0;

    public int StartingCount => Instances.Count(instance => instance.State == InstanceState.Starting);
}

/// <summary>A request waiting for a slot; the backend completes it under its lock after taking it out of the queue.</summary>
internal sealed class Waiter
{
    public TaskCompletionSource<LocalInstance> Slot { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public LinkedListNode<Waiter>? Node { get; set; }
}
