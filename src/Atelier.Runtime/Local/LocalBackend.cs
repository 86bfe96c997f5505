using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Atelier.Runtime.Local;

/// <summary>A custom host name mounted on a function (the server's SNI selector and Host routing read these).</summary>
public sealed record MountedDomain(FunctionKey Key, DomainSpec Domain);

/// <summary>
/// The <c>local</c> runtime: each instance is a child process in a process group of its own, listening on a loopback
/// port. Requests take a slot on a ready instance (at most the revision's instance concurrency per instance); an
/// instance starts when none is free and the function's maximum allows, and stops after its idle window down to the
/// warm minimum. Pid files under <see cref="LocalRuntimeOptions.StateDirectory"/> let the next server kill what a
/// crashed one left running.
/// </summary>
/// <remarks>
/// Two clocks: idleness ("last used", the idle check's period) is measured on the injected <see cref="TimeProvider"/>,
/// which tests move; waits on processes and sockets (health polls, start timeout, stop grace, restart backoff) are
/// real time, because a process does not start or exit sooner when a fake clock moves.
/// </remarks>
public sealed class LocalBackend : IRuntimeBackend, IAsyncDisposable
{
    private static readonly TimeSpan CapacityRetryAfter = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan HealthProbeTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan HealthPollMax = TimeSpan.FromMilliseconds(500);

    private readonly LocalRuntimeOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<LocalBackend> _logger;
    private readonly HttpClient _http;
    private readonly bool _useSetsid;
    private readonly string _instancesDirectory;
    private System.Diagnostics.Process? _guardian;
    private readonly string _logsDirectory;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, FunctionState> _functions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _operations = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, MountedDomain> _domains = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, WorkloadSpec> _workloads = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _lifetime = new();
    private Task? _idleLoop;
    private bool _disposed;

    public LocalBackend(LocalRuntimeOptions options, TimeProvider clock, ILogger<LocalBackend> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.StateDirectory, nameof(options));
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The local runtime backend needs Linux (process groups, /proc).");
        }

        _options = options;
        _clock = clock;
        _logger = logger;
        _instancesDirectory = Path.Combine(options.StateDirectory, "instances");
        _logsDirectory = Path.Combine(options.StateDirectory, "logs");
        Directory.CreateDirectory(_instancesDirectory);
        Directory.CreateDirectory(_logsDirectory);
        _useSetsid = File.Exists(ProcessGroups.SetsidPath);
        if (!_useSetsid)
        {
            logger.SetsidMissing();
        }

        // Health probes go straight to loopback: never through a proxy from the environment, never kept long on a
        // connection to an instance that may be gone.
        _http = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            ConnectTimeout = HealthProbeTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(5),
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public string Name => "local";

    public bool PerReplica => true;

    /// <summary>Custom host names by host (case-insensitive).</summary>
    public IReadOnlyDictionary<string, MountedDomain> Domains => _domains;

    public bool TryGetDomain(string host, [NotNullWhen(true)] out MountedDomain? domain) => _domains.TryGetValue(host, out domain);

    public async Task ApplyAsync(RuntimeRegion region, FunctionSpec spec, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var takers = Validate(spec);
        var gate = _operations.GetOrAdd(spec.Key.Name, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            var retired = new List<LocalInstance>();
            List<RevisionPool> serving;
            FunctionState function;
            lock (_gate)
            {
                ThrowIfDisposed();
                _idleLoop ??= Task.Run(() => IdleLoopAsync(_lifetime.Token), CancellationToken.None);
                if (!_functions.TryGetValue(spec.Key.Name, out function!))
                {
                    function = new FunctionState(spec);
                    _functions[spec.Key.Name] = function;
                }

                function.Spec = spec;
                var pools = new Dictionary<string, RevisionPool>(StringComparer.Ordinal);
                foreach (var revision in spec.Revisions)
                {
                    if (function.Pools.TryGetValue(revision.Name, out var pool) && SameProcess(pool.Spec, revision))
                    {
                        // Settings that do not change the process (concurrency, timeout) apply to the running instances.
                        pool.Spec = revision;
                    }
                    else
                    {
                        var replaced = pool;
                        pool = new RevisionPool(function, revision);
                        // Requests already waiting for the old configuration are served by the new one.
                        while (replaced?.Waiters.First is { } node)
                        {
                            replaced.Waiters.RemoveFirst();
                            node.Value.Node = pool.Waiters.AddLast(node.Value);
                        }
                    }

                    pool.TakesTraffic = takers.Contains(revision.Name);
                    pools[revision.Name] = pool;
                }

                foreach (var old in function.Pools.Values.Where(old => !pools.TryGetValue(old.Name, out var kept) || kept != old))
                {
                    RetireLocked(old, retired, RuntimeErrors.UnknownRevision, $"Revision {old.Name} of {spec.Key} was replaced or removed.");
                }

                function.Pools.Clear();
                foreach (var (name, pool) in pools)
                {
                    function.Pools[name] = pool;
                }

                function.Operations++;
                serving = [.. pools.Values.Where(pool => pool.TakesTraffic)];
            }

            try
            {
                // Old instances go first: a replaced revision on a fixed port needs that port back.
                await StopAllAsync(retired, "revision replaced or removed");
                await Task.WhenAll(serving.Select(pool => EnsureWarmAsync(pool, initial: true, ct)));
            }
            finally
            {
                lock (_gate)
                {
                    function.Operations--;
                }
            }
        }
        finally
        {
            gate.Release();
        }
    }

    public async Task DeleteAsync(RuntimeRegion region, FunctionKey key, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        var gate = _operations.GetOrAdd(key.Name, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            var stopping = new List<LocalInstance>();
            lock (_gate)
            {
                if (_functions.Remove(key.Name, out var function))
                {
                    function.Deleted = true;
                    foreach (var pool in function.Pools.Values)
                    {
                        RetireLocked(pool, stopping, RuntimeErrors.NotDeployed, $"Function {key} was deleted.");
                    }
                }
            }

            foreach (var (host, mounted) in _domains)
            {
                if (mounted.Key == key)
                {
                    _domains.TryRemove(host, out _);
                }
            }

            await StopAllAsync(stopping, "function deleted");
        }
        finally
        {
            gate.Release();
        }
    }

    public Task<FunctionObservation> ObserveAsync(RuntimeRegion region, FunctionKey key, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_gate)
        {
            if (!_functions.TryGetValue(key.Name, out var function))
            {
                return Task.FromResult(new FunctionObservation(FunctionPhase.Absent, null, 0, 0));
            }

            var instances = function.InstanceCount;
            var ready = function.Pools.Values.Sum(pool => pool.Instances.Count(instance => instance.State == InstanceState.Ready));
            var failure = function.Pools.Values.Where(pool => pool.TakesTraffic).Select(pool => pool.LastFailure).FirstOrDefault(reason => reason is not null);
            var phase = failure is not null ? FunctionPhase.Failed
                : function.Operations > 0 || function.Pools.Values.Any(pool => pool.Instances.Count(i => i.State == InstanceState.Ready) < pool.WarmTarget)
                    ? FunctionPhase.Deploying
                    : FunctionPhase.Ready;
            return Task.FromResult(new FunctionObservation(phase, failure, instances, ready));
        }
    }

    public async Task ScaleAsync(RuntimeRegion region, FunctionKey key, int instances, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (instances < 0)
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"An instance count cannot be negative ({instances.ToString(CultureInfo.InvariantCulture)}).");
        }

        var gate = _operations.GetOrAdd(key.Name, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            List<RevisionPool> serving;
            var surplus = new List<LocalInstance>();
            FunctionState function;
            lock (_gate)
            {
                ThrowIfDisposed();
                function = FindLocked(key);
                function.ManualScale = Math.Min(instances, FunctionState.InstanceCap);
                serving = [.. function.Pools.Values.Where(pool => pool.TakesTraffic)];
                if (instances > 0)
                {
                    // Scaling down to a manual count takes idle instances away now; busy ones go at their idle window.
                    foreach (var pool in serving)
                    {
                        var extra = pool.Instances.Count - pool.WarmTarget;
                        foreach (var instance in pool.Instances.Where(i => i.State == InstanceState.Ready && i.InFlight == 0).Take(Math.Max(0, extra)).ToList())
                        {
                            TakeOutLocked(instance, surplus);
                        }
                    }
                }

                function.Operations++;
            }

            try
            {
                await StopAllAsync(surplus, "scaled down");
                await Task.WhenAll(serving.Select(pool => EnsureWarmAsync(pool, initial: false, ct)));
            }
            finally
            {
                lock (_gate)
                {
                    function.Operations--;
                }
            }
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// A workload is a function of its own here: one revision whose instances are the replicas, kept at a manual count
    /// (restarted with backoff when one dies) and never stopped for idleness; zero replicas is no function at all.
    /// </summary>
    public async Task ApplyWorkloadAsync(RuntimeRegion region, WorkloadSpec spec, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Replicas < 0)
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"A replica count cannot be negative ({spec.Replicas.ToString(CultureInfo.InvariantCulture)}).");
        }

        _workloads[spec.Name] = spec;
        await ScaleWorkloadAsync(region, spec.Name, spec.Replicas, ct);
    }

    public async Task ScaleWorkloadAsync(RuntimeRegion region, string name, int replicas, CancellationToken ct)
    {
        if (!_workloads.TryGetValue(name, out var spec))
        {
            throw new RuntimeException(RuntimeErrors.NotDeployed, $"Workload {name} is not deployed.");
        }

        if (replicas < 0)
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"A replica count cannot be negative ({replicas.ToString(CultureInfo.InvariantCulture)}).");
        }

        _workloads[name] = spec with { Replicas = replicas };
        var key = new FunctionKey(name);
        if (replicas == 0)
        {
            await DeleteAsync(region, key, ct);
            return;
        }

        bool running;
        lock (_gate)
        {
            running = _functions.TryGetValue(name, out var function) && SameWorkload(function.Spec, spec);
        }

        if (!running)
        {
            await ApplyAsync(region, WorkloadFunction(spec), ct);
        }

        await ScaleAsync(region, key, replicas, ct);
    }

    public async Task DeleteWorkloadAsync(RuntimeRegion region, string name, CancellationToken ct)
    {
        _workloads.TryRemove(name, out _);
        await DeleteAsync(region, new FunctionKey(name), ct);
    }

    public async Task<WorkloadObservation> ObserveWorkloadAsync(RuntimeRegion region, string name, CancellationToken ct)
    {
        if (!_workloads.TryGetValue(name, out var spec))
        {
            return new WorkloadObservation(false, 0, 0, null);
        }

        var seen = await ObserveAsync(region, new FunctionKey(name), ct);
        return new WorkloadObservation(true, spec.Replicas, seen.ReadyInstances, seen.Reason);
    }

    /// <summary>The processes of a workload's ready replicas (tests kill them).</summary>
    public IReadOnlyList<int> WorkloadProcessIds(string name) => ReadyProcessIds(new FunctionKey(name));

    private static FunctionSpec WorkloadFunction(WorkloadSpec spec)
    {
        var environment = new Dictionary<string, string>(spec.Environment, StringComparer.Ordinal);
        foreach (var (key, value) in spec.Secrets)
        {
            environment[key] = value;
        }

        return new FunctionSpec
        {
            Key = new FunctionKey(spec.Name),
            Revisions =
            [
                new RevisionSpec
                {
                    Name = "latest", Command = spec.Command, Args = spec.Args, Environment = environment, HealthPath = spec.HealthPath,
                    InstanceConcurrency = 1,
                },
            ],
            MinInstances = 0,
            MaxInstances = FunctionState.InstanceCap,
            IdleWindow = TimeSpan.FromDays(3650),
            Labels = spec.Labels,
        };
    }

    private static bool SameWorkload(FunctionSpec running, WorkloadSpec spec)
    {
        var wanted = WorkloadFunction(spec);
        return running.Revisions is [var r] && wanted.Revisions is [var w] && SameProcess(r, w);
    }

    public Task MountDomainAsync(RuntimeRegion region, FunctionKey key, DomainSpec domain, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(domain);
        var mounted = new MountedDomain(key, domain);
        var current = _domains.GetOrAdd(domain.Host, mounted);
        if (current.Key != key)
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"Host {domain.Host} is already mounted on {current.Key}.");
        }

        // Mounting again replaces the certificate (a renewal).
        _domains[domain.Host] = mounted;
        return Task.CompletedTask;
    }

    public Task UnmountDomainAsync(RuntimeRegion region, FunctionKey key, string host, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (_domains.TryGetValue(host, out var current) && current.Key == key)
        {
            _domains.TryRemove(new KeyValuePair<string, MountedDomain>(host, current));
        }

        return Task.CompletedTask;
    }

    public async ValueTask<IInstanceLease> AcquireAsync(RuntimeRegion region, FunctionKey key, string revision, TimeSpan wait, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(key);
        Waiter waiter;
        RevisionPool pool;
        lock (_gate)
        {
            ThrowIfDisposed();
            var function = FindLocked(key);
            if (!function.Pools.TryGetValue(revision, out pool!))
            {
                throw new RuntimeException(RuntimeErrors.UnknownRevision, $"Function {key} has no revision {revision}.");
            }

            // Earlier waiters go first: a free slot is only taken here when nobody queues for one.
            if (pool.Waiters.Count == 0 && TakeSlotLocked(pool) is { } free)
            {
                return new InstanceLease(this, free);
            }

            waiter = new Waiter();
            waiter.Node = pool.Waiters.AddLast(waiter);
            StartForDemandLocked(pool);
        }

        try
        {
            // A negative wait (other than infinite) is a caller's "do not wait".
            var bound = wait < TimeSpan.Zero && wait != Timeout.InfiniteTimeSpan ? TimeSpan.Zero : wait;
            return new InstanceLease(this, await waiter.Slot.Task.WaitAsync(bound, ct));
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            lock (_gate)
            {
                if (waiter.Node is not null)
                {
                    pool.Waiters.Remove(waiter.Node);
                    waiter.Node = null;
                }
                else if (waiter.Slot.Task.IsCompletedSuccessfully)
                {
                    // The slot came at the same moment the wait ended.
                    var instance = waiter.Slot.Task.Result;
                    if (ex is TimeoutException)
                    {
                        return new InstanceLease(this, instance);
                    }

                    ReleaseLocked(instance);
                }
                else if (waiter.Slot.Task.Exception?.InnerException is { } failure)
                {
                    throw failure;
                }
            }

            if (ex is TimeoutException)
            {
                throw new RuntimeCapacityException(
                    $"No instance of {key}/{revision} had a free slot within {wait.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s.",
                    CapacityRetryAfter);
            }

            throw;
        }
    }

    /// <summary>
    /// Stops instances with nothing in flight whose last use is older than the function's idle window, keeping each
    /// traffic-taking revision's warm minimum. The idle loop calls it every <see cref="LocalRuntimeOptions.IdleCheckInterval"/>.
    /// </summary>
    /// <returns>How many instances were stopped.</returns>
    public async Task<int> StopIdleAsync(CancellationToken ct = default)
    {
        var idle = new List<LocalInstance>();
        lock (_gate)
        {
            var now = _clock.GetUtcNow();
            foreach (var function in _functions.Values)
            {
                foreach (var pool in function.Pools.Values)
                {
                    var stoppable = pool.Instances.Count - pool.WarmTarget;
                    var candidates = pool.Instances
                        .Where(i => i.State == InstanceState.Ready && i.InFlight == 0 && now - i.LastUsed >= function.Spec.IdleWindow)
                        .OrderBy(i => i.LastUsed)
                        .Take(Math.Max(0, stoppable))
                        .ToList();
                    foreach (var instance in candidates)
                    {
                        _logger.IdleStopping(instance.Id, function.Spec.Key.Name, pool.Name, instance.LastUsed);
                        TakeOutLocked(instance, idle);
                    }
                }
            }
        }

        await StopAllAsync(idle, "idle");
        return idle.Count;
    }

    /// <summary>
    /// Kills the process groups named by pid files that no instance of this backend owns (left by a server that
    /// crashed or was killed) and deletes the files. A pid that now belongs to an unrelated process is left alone.
    /// </summary>
    /// <returns>How many process groups were killed.</returns>
    public Task<int> CleanStaleAsync(CancellationToken ct = default)
    {
        HashSet<string> owned;
        lock (_gate)
        {
            owned = [.. _functions.Values.SelectMany(f => f.Pools.Values).SelectMany(p => p.Instances).Select(i => i.Id)];
        }

        var killed = 0;
        foreach (var path in Directory.EnumerateFiles(_instancesDirectory, "*.pid"))
        {
            ct.ThrowIfCancellationRequested();
            var id = Path.GetFileNameWithoutExtension(path);
            if (owned.Contains(id))
            {
                continue;
            }

            if (PidFile.TryRead(path) is { } stale && stale.GroupStillRuns())
            {
                // Nobody serves through it any more, so there is nothing to drain: SIGKILL at once.
                var sent = stale.Pgid > 0 ? ProcessGroups.SignalGroup(stale.Pgid, ProcessGroups.SigKill) : ProcessGroups.SignalProcess(stale.Pid, ProcessGroups.SigKill);
                if (sent)
                {
                    killed++;
                    _logger.StaleKilled(stale.Pgid > 0 ? stale.Pgid : stale.Pid, id, path);
                }
            }
            else
            {
                _logger.StaleFileRemoved(id);
            }

            File.Delete(path);
        }

        return Task.FromResult(killed);
    }

    /// <summary>
    /// Starts the guardian: a small shell loop in its own session that waits for this process to end and then stops
    /// every instance whose pid file is left (SIGTERM to the group, then SIGKILL after the grace period). A server
    /// killed with SIGKILL cannot stop its instances itself; the guardian does, so no instance outlives it. A server
    /// that stops normally has removed every pid file first, so the guardian then finds nothing.
    /// </summary>
    public void StartGuardian()
    {
        const string script = """
            while kill -0 "$1" 2>/dev/null; do sleep 1; done
            for sig in TERM KILL; do
              for f in "$2"/*.pid; do
                [ -f "$f" ] || continue
                g=$(sed -n 's/^pgid=//p' "$f")
                if [ -n "$g" ] && [ "$g" != 0 ]; then kill -s "$sig" -- "-$g" 2>/dev/null; fi
                [ "$sig" = KILL ] && rm -f "$f"
              done
              [ "$sig" = TERM ] && sleep "$3"
            done
            """;
        var info = new System.Diagnostics.ProcessStartInfo(File.Exists("/usr/bin/setsid") ? "/usr/bin/setsid" : "sh")
        {
            UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = false, RedirectStandardError = false,
        };
        if (info.FileName != "sh")
        {
            info.ArgumentList.Add("sh");
        }

        foreach (var a in new[] { "-c", script, "atelier-guardian", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), _instancesDirectory,
                     ((int)Math.Ceiling(_options.StopGrace.TotalSeconds)).ToString(CultureInfo.InvariantCulture) })
        {
            info.ArgumentList.Add(a);
        }

        _guardian = System.Diagnostics.Process.Start(info);
    }

    public async ValueTask DisposeAsync()
    {
        var stopping = new List<LocalInstance>();
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            foreach (var function in _functions.Values)
            {
                function.Deleted = true;
                foreach (var pool in function.Pools.Values)
                {
                    RetireLocked(pool, stopping, RuntimeErrors.NotDeployed, "The local runtime is shutting down.");
                }
            }

            _functions.Clear();
        }

        await _lifetime.CancelAsync();
        if (_idleLoop is not null)
        {
            await _idleLoop;
        }

        await StopAllAsync(stopping, "runtime shutting down");
        _http.Dispose();
        if (_guardian is { } guardian)
        {
            // Nothing is left for it to stop; a server hosted in a longer-lived process (a test) must not keep one per start.
            try
            {
                guardian.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // already gone
            }

            guardian.Dispose();
        }
    }

    /// <summary>Forgets every instance without stopping it, as a crashed server would (tests of <see cref="CleanStaleAsync"/>).</summary>
    internal void Abandon()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var instance in _functions.Values.SelectMany(f => f.Pools.Values).SelectMany(p => p.Instances))
            {
                instance.Abandon();
            }

            _functions.Clear();
        }

        _lifetime.Cancel();
    }

    public Task<IReadOnlyDictionary<string, int>> ReadyInstancesAsync(RuntimeRegion region, CancellationToken ct)
    {
        lock (_gate)
        {
            IReadOnlyDictionary<string, int> ready = _functions.ToDictionary(f => f.Key,
                f => f.Value.Pools.Values.Sum(pool => pool.Instances.Count(i => i.State == InstanceState.Ready)), StringComparer.Ordinal);
            return Task.FromResult(ready);
        }
    }

    /// <summary>The process ids of a function's ready instances (the host logs its local worker's).</summary>
    public IReadOnlyList<int> ReadyProcessIds(FunctionKey key) => [.. Instances(key).Where(i => i.Ready).Select(i => i.Pid)];

    /// <summary>The instances of a function (tests).</summary>
    internal IReadOnlyList<(string Id, string Revision, int Pid, bool Ready, int InFlight)> Instances(FunctionKey key)
    {
        lock (_gate)
        {
            return _functions.TryGetValue(key.Name, out var function)
                ? [.. function.Pools.Values.SelectMany(p => p.Instances).Select(i => (i.Id, i.Pool.Name, i.Pid, i.State == InstanceState.Ready, i.InFlight))]
                : [];
        }
    }

    private static HashSet<string> Validate(FunctionSpec spec)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var revision in spec.Revisions)
        {
            if (!names.Add(revision.Name))
            {
                throw new RuntimeException(RuntimeErrors.InvalidSpec, $"Revision {revision.Name} of {spec.Key} is named twice.");
            }

            if (string.IsNullOrWhiteSpace(revision.Command))
            {
                throw new RuntimeException(RuntimeErrors.InvalidSpec, $"Revision {revision.Name} of {spec.Key} has no command to run.");
            }

            if (revision.Port is < 0 or > 65535)
            {
                throw new RuntimeException(RuntimeErrors.InvalidSpec, $"Revision {revision.Name} of {spec.Key} names port {revision.Port.ToString(CultureInfo.InvariantCulture)}.");
            }
        }

        if (spec.MinInstances < 0 || spec.MaxInstances < 0)
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"Instance bounds of {spec.Key} cannot be negative.");
        }

        var takers = new HashSet<string>(StringComparer.Ordinal);
        if (spec.Traffic.Count == 0)
        {
            takers.Add("latest");
        }

        foreach (var target in spec.Traffic.Where(t => t.Percent > 0 || t.Tag is not null))
        {
            takers.Add(target.Revision);
        }

        foreach (var taker in takers.Where(t => !names.Contains(t)))
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"Traffic of {spec.Key} goes to revision {taker}, which the spec does not define.");
        }

        return takers;
    }

    /// <summary>Whether two revisions run the same process (anything else changes in place).</summary>
    private static bool SameProcess(RevisionSpec a, RevisionSpec b) =>
        string.Equals(a.Command, b.Command, StringComparison.Ordinal)
        && a.Args.SequenceEqual(b.Args, StringComparer.Ordinal)
        && a.Environment.Count == b.Environment.Count
        && a.Environment.All(pair => b.Environment.TryGetValue(pair.Key, out var value) && string.Equals(value, pair.Value, StringComparison.Ordinal))
        && a.Port == b.Port
        && string.Equals(a.HealthPath, b.HealthPath, StringComparison.Ordinal);

    private FunctionState FindLocked(FunctionKey key) =>
        _functions.TryGetValue(key.Name, out var function)
            ? function
            : throw new RuntimeException(RuntimeErrors.NotDeployed, $"Function {key} is not deployed on the local runtime.");

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>A slot on the least busy ready instance with one free, or null.</summary>
    private static LocalInstance? TakeSlotLocked(RevisionPool pool)
    {
        LocalInstance? best = null;
        foreach (var instance in pool.Instances)
        {
            if (instance.State == InstanceState.Ready && instance.InFlight < pool.Concurrency && (best is null || instance.InFlight < best.InFlight))
            {
                best = instance;
            }
        }

        if (best is not null)
        {
            best.InFlight++;
        }

        return best;
    }

    /// <summary>Hands free slots to waiters in order.</summary>
    private static void DispatchLocked(RevisionPool pool)
    {
        while (pool.Waiters.First is { } node && TakeSlotLocked(pool) is { } instance)
        {
            pool.Waiters.RemoveFirst();
            node.Value.Node = null;
            node.Value.Slot.TrySetResult(instance);
        }
    }

    /// <summary>Starts instances for the waiters that the instances already starting will not serve, within the function's maximum.</summary>
    private void StartForDemandLocked(RevisionPool pool)
    {
        if (pool.Retired)
        {
            return;
        }

        var function = pool.Function;
        var coming = pool.StartingCount * pool.Concurrency;
        while (pool.Waiters.Count > coming && function.InstanceCount < function.MaxInstances)
        {
            var instance = NewInstanceLocked(pool);
            coming += pool.Concurrency;
            _ = Task.Run(() => StartForDemandAsync(instance));
        }
    }

    private async Task StartForDemandAsync(LocalInstance instance)
    {
        try
        {
            await StartAsync(instance, _lifetime.Token);
        }
        catch (Exception ex)
        {
            var failure = ex as RuntimeException ?? new RuntimeException(RuntimeErrors.ExitedAtStart, ex.Message, ex);
            lock (_gate)
            {
                var pool = instance.Pool;
                // The waiters fail with the start's cause when no other instance could still serve them.
                if (pool.Instances.Count == 0)
                {
                    FailWaitersLocked(pool, failure);
                }
            }
        }
    }

    /// <summary>
    /// Starts instances until the pool has its warm target (at least one when <paramref name="initial"/>: the first
    /// instance of a traffic-taking revision, as ApplyAsync wants) and waits for them; a failure is thrown. When an
    /// apply fails, every instance of the revision is stopped (a half-started revision must not serve); a scale or a
    /// crash replacement keeps the instances that do run.
    /// </summary>
    private async Task EnsureWarmAsync(RevisionPool pool, bool initial, CancellationToken ct)
    {
        var starting = new List<LocalInstance>();
        lock (_gate)
        {
            if (pool.Retired)
            {
                return;
            }

            var target = initial ? Math.Max(1, pool.WarmTarget) : pool.WarmTarget;
            var room = pool.Function.MaxInstances - pool.Function.InstanceCount;
            var missing = Math.Min(target - pool.Instances.Count, room);
            for (var i = 0; i < missing; i++)
            {
                starting.Add(NewInstanceLocked(pool));
            }
        }

        try
        {
            await Task.WhenAll(starting.Select(instance => StartAsync(instance, ct)));
            lock (_gate)
            {
                pool.LastFailure = null;
            }
        }
        catch (Exception ex)
        {
            var all = new List<LocalInstance>();
            lock (_gate)
            {
                pool.LastFailure = ex.Message;
                if (initial)
                {
                    foreach (var instance in pool.Instances.ToList())
                    {
                        TakeOutLocked(instance, all);
                    }

                    // Nothing of the revision runs now, so requests waiting for it learn why instead of timing out.
                    FailWaitersLocked(pool, ex as RuntimeException ?? new RuntimeException(RuntimeErrors.ExitedAtStart, ex.Message, ex));
                }
            }

            await StopAllAsync(all, "its revision failed to start");
            throw;
        }
    }

    private LocalInstance NewInstanceLocked(RevisionPool pool)
    {
        // Readable in logs and file names: function, revision and a random suffix.
        var id = $"{pool.Function.Spec.Key.Name}.{pool.Name}.{Guid.NewGuid().ToString("N")[..12]}";
        var slot = 0;
        while (pool.Instances.Any(i => i.Slot == slot))
        {
            slot++;
        }

        var instance = new LocalInstance(id, pool, _logger, OnInstanceExited) { Slot = slot };
        pool.Instances.Add(instance);
        return instance;
    }

    /// <summary>Launches the instance's process and waits until its health path answers 2xx; on failure the process is stopped.</summary>
    private async Task StartAsync(LocalInstance instance, CancellationToken ct)
    {
        var pool = instance.Pool;
        var revision = pool.Spec;
        var function = pool.Function.Spec.Key.Name;
        try
        {
            var command = ResolveCommand(revision);
            var port = revision.Port > 0 ? revision.Port : FreeLoopbackPort();
            if (revision.Port > 0 && !PortIsFree(revision.Port))
            {
                throw new RuntimeException(RuntimeErrors.PortInUse, $"Port {revision.Port.ToString(CultureInfo.InvariantCulture)} of {function}/{revision.Name} is already in use.");
            }

            _logger.InstanceStarting(instance.Id, function, revision.Name, command, port);
            instance.Launch(
                BuildStartInfo(instance, revision, command, port),
                port,
                _useSetsid,
                command,
                Path.Combine(_instancesDirectory, instance.Id + ".pid"),
                Path.Combine(_logsDirectory, instance.Id + ".log"),
                _options.LogFileMaxBytes);
            await WaitHealthyAsync(instance, revision, port, ct);
            lock (_gate)
            {
                if (instance.State != InstanceState.Starting || instance.StopRequested)
                {
                    throw new RuntimeException(RuntimeErrors.NotDeployed, $"Instance {instance.Id} was stopped before it became ready.");
                }

                instance.State = InstanceState.Ready;
                instance.LastUsed = _clock.GetUtcNow();
                instance.ReadyTimestamp = Stopwatch.GetTimestamp();
                pool.LastFailure = null;
                DispatchLocked(pool);
            }

            _logger.InstanceReady(instance.Id, function, revision.Name, instance.Pid, port);
        }
        catch (Exception ex)
        {
            var stopping = new List<LocalInstance>();
            lock (_gate)
            {
                TakeOutLocked(instance, stopping);
            }

            _logger.InstanceStartFailed(instance.Id, function, revision.Name, (ex as RuntimeException)?.Code ?? ex.GetType().Name, ex.Message);
            await instance.StopAsync(_options.StopGrace);
            throw;
        }
    }

    private async Task WaitHealthyAsync(LocalInstance instance, RevisionSpec revision, int port, CancellationToken ct)
    {
        var health = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}{(revision.HealthPath.StartsWith('/') ? "" : "/")}{revision.HealthPath}"));
        var started = Stopwatch.GetTimestamp();
        var pause = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (instance.StopRequested)
            {
                throw new RuntimeException(RuntimeErrors.NotDeployed, $"Instance {instance.Id} was stopped before it became ready.");
            }

            if (instance.HasExited)
            {
                throw new RuntimeException(RuntimeErrors.ExitedAtStart,
                    $"{revision.Command} exited before it answered {health.AbsolutePath}: {await instance.DescribeExitAsync()}");
            }

            if (await ProbeAsync(health, ct))
            {
                return;
            }

            if (Stopwatch.GetElapsedTime(started) >= _options.StartTimeout)
            {
                throw new RuntimeException(RuntimeErrors.NeverHealthy,
                    $"{revision.Command} did not answer {health.AbsolutePath} with a 2xx within {_options.StartTimeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s.");
            }

            // An exit ends the pause early: it is reported at once, not after the next probe.
            await LocalInstance.WithinAsync(instance.Exited, pause);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, HealthPollMax.Ticks));
        }
    }

    private async Task<bool> ProbeAsync(Uri health, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(HealthProbeTimeout);
        try
        {
            using var response = await _http.GetAsync(health, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
    }

    private ProcessStartInfo BuildStartInfo(LocalInstance instance, RevisionSpec revision, string command, int port)
    {
        var portText = port.ToString(CultureInfo.InvariantCulture);
        var slotText = instance.Slot.ToString(CultureInfo.InvariantCulture);
        var info = new ProcessStartInfo
        {
            FileName = _useSetsid ? ProcessGroups.SetsidPath : command,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (_useSetsid)
        {
            info.ArgumentList.Add(command);
        }

        foreach (var argument in revision.Args)
        {
            info.ArgumentList.Add(argument.Replace("{port}", portText, StringComparison.Ordinal).Replace("{slot}", slotText, StringComparison.Ordinal));
        }

        foreach (var (name, value) in revision.Environment)
        {
            info.Environment[name] = value.Replace("{port}", portText, StringComparison.Ordinal).Replace("{slot}", slotText, StringComparison.Ordinal);
        }

        info.Environment["PORT"] = portText;
        info.Environment["ATELIER_INSTANCE_ID"] = instance.Id;
        info.Environment["ATELIER_PARENT_PID"] = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        return info;
    }

    /// <summary>The command's full path: as given when it names a path, else the first match on PATH; it must be executable.</summary>
    private static string ResolveCommand(RevisionSpec revision)
    {
        var command = revision.Command!;
        if (command.Contains('/', StringComparison.Ordinal))
        {
            var full = Path.GetFullPath(command);
            return IsExecutable(full)
                ? full
                : throw new RuntimeException(RuntimeErrors.CommandNotFound, $"{command} does not exist or is not executable.");
        }

        var path = revision.Environment.GetValueOrDefault("PATH") ?? Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var directory in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, command);
            if (IsExecutable(candidate))
            {
                return candidate;
            }
        }

        throw new RuntimeException(RuntimeErrors.CommandNotFound, $"{command} was not found on PATH.");
    }

    private static bool IsExecutable(string path) =>
        !OperatingSystem.IsWindows()
        && File.Exists(path)
        && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;

    private static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static bool PortIsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Takes an instance out of its pool so nothing new is sent to it; the caller stops it.</summary>
    private static void TakeOutLocked(LocalInstance instance, List<LocalInstance> stopping)
    {
        instance.State = InstanceState.Stopping;
        if (instance.Pool.Instances.Remove(instance))
        {
            stopping.Add(instance);
        }
    }

    /// <summary>Marks a pool as gone: its waiters fail with <paramref name="code"/>, its instances are handed to the caller to stop.</summary>
    private static void RetireLocked(RevisionPool pool, List<LocalInstance> stopping, string code, string message)
    {
        pool.Retired = true;
        foreach (var instance in pool.Instances.ToList())
        {
            TakeOutLocked(instance, stopping);
        }

        FailWaitersLocked(pool, new RuntimeException(code, message));
    }

    private static void FailWaitersLocked(RevisionPool pool, RuntimeException failure)
    {
        while (pool.Waiters.First is { } node)
        {
            pool.Waiters.RemoveFirst();
            node.Value.Node = null;
            node.Value.Slot.TrySetException(failure);
        }
    }

    private async Task StopAllAsync(List<LocalInstance> instances, string reason)
    {
        await Task.WhenAll(instances.Select(async instance =>
        {
            await instance.StopAsync(_options.StopGrace);
            _logger.InstanceStopped(instance.Id, instance.Pool.Function.Spec.Key.Name, instance.Pool.Name, reason);
        }));
    }

    private void Release(LocalInstance instance)
    {
        lock (_gate)
        {
            ReleaseLocked(instance);
        }
    }

    private void ReleaseLocked(LocalInstance instance)
    {
        instance.InFlight = Math.Max(0, instance.InFlight - 1);
        instance.LastUsed = _clock.GetUtcNow();
        if (instance.State == InstanceState.Ready)
        {
            DispatchLocked(instance.Pool);
        }
    }

    private void CheckInstance(LocalInstance instance)
    {
        var exited = instance.HasExited || (instance.Pid > 0 && ProcessGroups.ReadStat(instance.Pid) is not { IsAlive: true });
        _logger.FailureReported(instance.Id, exited);
        if (exited)
        {
            OnInstanceExited(instance);
        }
    }

    /// <summary>An instance's process ended. Expected when it was stopping or starting (its start reports it); otherwise a crash.</summary>
    private void OnInstanceExited(LocalInstance instance)
    {
        var stopping = new List<LocalInstance>();
        lock (_gate)
        {
            if (instance.Abandoned || instance.State != InstanceState.Ready)
            {
                return;
            }

            var pool = instance.Pool;
            TakeOutLocked(instance, stopping);
            _logger.InstanceCrashed(instance.Id, pool.Function.Spec.Key.Name, pool.Name, instance.ExitCode);
            // A replacement that then ran for a while is not a crash loop: the backoff starts over.
            if (Stopwatch.GetElapsedTime(instance.ReadyTimestamp) > _options.RestartBackoffMax)
            {
                pool.RestartAttempt = 0;
            }

            StartForDemandLocked(pool);
            ScheduleRestartLocked(pool);
        }

        // Whatever the instance forked is killed with its group; the pid file goes.
        _ = StopAllAsync(stopping, "exited unexpectedly");
    }

    /// <summary>Replaces missing warm instances after a backoff that doubles on each failed attempt.</summary>
    private void ScheduleRestartLocked(RevisionPool pool)
    {
        if (pool.RestartPending || pool.Retired || _disposed || pool.Instances.Count >= pool.WarmTarget)
        {
            return;
        }

        pool.RestartPending = true;
        var attempt = pool.RestartAttempt++;
        var delay = TimeSpan.FromTicks(Math.Min(_options.RestartBackoffInitial.Ticks * (1L << Math.Min(attempt, 20)), _options.RestartBackoffMax.Ticks));
        _logger.RestartScheduled(pool.Function.Spec.Key.Name, pool.Name, pool.WarmTarget, attempt + 1, delay);
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(delay, _lifetime.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            lock (_gate)
            {
                pool.RestartPending = false;
            }

            try
            {
                await EnsureWarmAsync(pool, initial: false, _lifetime.Token);
            }
            catch (Exception ex) when (!_lifetime.IsCancellationRequested)
            {
                _logger.RestartFailed(pool.Function.Spec.Key.Name, pool.Name, (ex as RuntimeException)?.Code ?? ex.GetType().Name, ex.Message);
                lock (_gate)
                {
                    ScheduleRestartLocked(pool);
                }
            }
            catch (Exception)
            {
                // Shutting down: nothing to replace.
            }
        });
    }

    private async Task IdleLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_options.IdleCheckInterval, _clock);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    await StopIdleAsync(ct);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    _logger.IdleCheckFailed(ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Disposed.
        }
    }

    private sealed class InstanceLease(LocalBackend backend, LocalInstance instance) : IInstanceLease
    {
        private int _disposed;

        public Uri Destination { get; } = instance.Destination;

        public string InstanceId => instance.Id;

        public void ReportFailure() => backend.CheckInstance(instance);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                backend.Release(instance);
            }
        }
    }
}
