namespace Atelier.Runtime;

/// <summary>
/// Where functions run. Implementations are registered side by side and chosen per region by <see cref="Name"/>
/// (<c>local</c>: child processes on this machine; <c>kubernetes</c>: Knative Services in the region's cluster).
/// Every method is idempotent: the reconciler calls them again until desired and actual agree. A failure is a
/// <see cref="RuntimeException"/> whose <see cref="RuntimeException.Code"/> and message say what the backend saw.
/// </summary>
public interface IRuntimeBackend
{
    string Name { get; }

    /// <summary>
    /// Whether the backend fires the spec's timer triggers itself (kubernetes: a PingSource per timer). When false (local),
    /// the platform fires them through the backend like any async invocation.
    /// </summary>
    bool SchedulesTimers => false;

    /// <summary>
    /// Whether each server replica has instances of its own (local: child processes of this server, gone with it). Then
    /// every replica applies and reconciles its functions for itself; otherwise the backend's objects are shared by all
    /// replicas, and only the leader reconciles them.
    /// </summary>
    bool PerReplica => false;

    /// <summary>
    /// Creates or updates the function to match <paramref name="spec"/>: its revisions, traffic split and scale
    /// bounds. Like Knative's initial scale of one, each revision that takes traffic is started once and must become
    /// ready (healthy) before this returns, so a command that does not exist, an instance that exits at start or never
    /// answers its health path, or a port that is taken fails here, not on the first request.
    /// </summary>
    Task ApplyAsync(RuntimeRegion region, FunctionSpec spec, CancellationToken ct);

    /// <summary>Stops every instance and removes the backend's objects. Deleting what is not there succeeds.</summary>
    Task DeleteAsync(RuntimeRegion region, FunctionKey key, CancellationToken ct);

    /// <summary>What the backend has for the function now.</summary>
    Task<FunctionObservation> ObserveAsync(RuntimeRegion region, FunctionKey key, CancellationToken ct);

    /// <summary>Sets a manual instance count (kept warm until changed); 0 returns the function to request-driven scaling.</summary>
    Task ScaleAsync(RuntimeRegion region, FunctionKey key, int instances, CancellationToken ct);

    /// <summary>Serves the function under a custom host name with the given certificate (local: the router's SNI table; kubernetes: a DomainMapping and a TLS secret).</summary>
    Task MountDomainAsync(RuntimeRegion region, FunctionKey key, DomainSpec domain, CancellationToken ct);

    /// <summary>Removes a custom host name. Removing one that is not there succeeds.</summary>
    Task UnmountDomainAsync(RuntimeRegion region, FunctionKey key, string host, CancellationToken ct);

    /// <summary>
    /// Where to send one request for <paramref name="revision"/>. The local backend hands out a slot on a ready
    /// instance (never more than the revision's instance concurrency per instance), starting an instance when none is
    /// free and the function's maximum allows, and waits up to <paramref name="wait"/> for one; past that it throws
    /// <see cref="RuntimeCapacityException"/>. The kubernetes backend answers the revision's address (Knative's
    /// activator holds and spreads requests there). Dispose the lease when the response is done.
    /// </summary>
    ValueTask<IInstanceLease> AcquireAsync(RuntimeRegion region, FunctionKey key, string revision, TimeSpan wait, CancellationToken ct);

    /// <summary>
    /// Creates or updates a worker workload to match <paramref name="spec"/>, with its replicas (local: that many worker
    /// processes, each checked healthy before this returns; kubernetes: a Deployment and a Secret).
    /// </summary>
    Task ApplyWorkloadAsync(RuntimeRegion region, WorkloadSpec spec, CancellationToken ct);

    /// <summary>Sets a workload's replicas (kubernetes: through the Deployment's scale subresource). Scaling what is not there fails with <see cref="RuntimeErrors.NotDeployed"/>.</summary>
    Task ScaleWorkloadAsync(RuntimeRegion region, string name, int replicas, CancellationToken ct);

    /// <summary>Stops every replica and removes the workload's objects. Deleting what is not there succeeds.</summary>
    Task DeleteWorkloadAsync(RuntimeRegion region, string name, CancellationToken ct);

    Task<WorkloadObservation> ObserveWorkloadAsync(RuntimeRegion region, string name, CancellationToken ct);

    /// <summary>
    /// The ready instances of every function and worker workload the backend runs in the region, by key or workload
    /// name, in one look (the operators' gauges). Local: this replica's child processes; kubernetes: one list of
    /// revisions (Knative's ready pods per revision) and one of Atelier's deployments.
    /// </summary>
    Task<IReadOnlyDictionary<string, int>> ReadyInstancesAsync(RuntimeRegion region, CancellationToken ct);
}

/// <summary>One request's hold on an instance; disposing it frees the slot.</summary>
public interface IInstanceLease : IDisposable
{
    /// <summary>The instance's base address (scheme, host, port); the request's path is appended.</summary>
    Uri Destination { get; }

    string InstanceId { get; }

    /// <summary>Tells the backend the instance failed this request at the transport level (refused, reset): it checks the instance.</summary>
    void ReportFailure();
}
