namespace Atelier.Runtime;

/// <summary>A region as the runtime sees it: its name, the backend that serves it and, for Kubernetes, the decrypted kube config and namespace.</summary>
public sealed record RuntimeRegion(string Name, string Backend, string? KubeConfig = null, string Namespace = "atelier");

/// <summary>A function's name on a backend: a DNS-1035 label unique on the platform (<c>fn-</c> and the function id).</summary>
public sealed record FunctionKey(string Name)
{
    public override string ToString() => Name;
}

/// <summary>One runnable configuration of a function (a published version, or <c>latest</c>, the draft).</summary>
public sealed record RevisionSpec
{
    /// <summary>The revision's name within the function: <c>latest</c> or <c>v{n}</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Container image (kubernetes).</summary>
    public string? Image { get; init; }

    /// <summary>Program to start (local). Arguments and environment values may name <c>{port}</c> (the instance's port) and <c>{slot}</c> (the lowest number no other live instance of the revision holds: stable when an instance is replaced).</summary>
    public string? Command { get; init; }

    public IReadOnlyList<string> Args { get; init; } = [];

    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>The port the program listens on; 0 lets the local backend pick a free loopback port per instance (passed as <c>PORT</c> and <c>{port}</c>).</summary>
    public int Port { get; init; }

    /// <summary>Answers 2xx once the instance is ready.</summary>
    public string HealthPath { get; init; } = "/";

    /// <summary>Requests one instance serves at once (Knative's containerConcurrency).</summary>
    public int InstanceConcurrency { get; init; } = 1;

    /// <summary>The longest a request may take, including a cold start.</summary>
    public int TimeoutSeconds { get; init; } = 300;

    public double Cpu { get; init; }

    public int MemoryMb { get; init; }

    public int Gpu { get; init; }
}

/// <summary>A share of the function's traffic: <paramref name="Percent"/> of requests without a qualifier go to <paramref name="Revision"/>; <paramref name="Tag"/> names a route to it whatever its share.</summary>
public sealed record TrafficTarget(string Revision, int Percent, string? Tag = null);

/// <summary>What should exist for one function.</summary>
public sealed record FunctionSpec
{
    public required FunctionKey Key { get; init; }

    public required IReadOnlyList<RevisionSpec> Revisions { get; init; }

    /// <summary>Sums to 100. Empty: all traffic to <c>latest</c>.</summary>
    public IReadOnlyList<TrafficTarget> Traffic { get; init; } = [];

    /// <summary>Instances kept warm per revision that takes traffic (provision config, or a manual scale).</summary>
    public int MinInstances { get; init; }

    /// <summary>The most instances the function may have at once (concurrency config); 0 means no limit of its own.</summary>
    public int MaxInstances { get; init; }

    /// <summary>How long an instance may sit idle before it is stopped (down to <see cref="MinInstances"/>).</summary>
    public TimeSpan IdleWindow { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Timer triggers, for a backend that schedules them itself (<see cref="IRuntimeBackend.SchedulesTimers"/>).</summary>
    public IReadOnlyList<TimerSpec> Timers { get; init; } = [];

    /// <summary>Labels for the backend's objects (tenant id, function id).</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
}

/// <summary>A timer trigger: <paramref name="Schedule"/> (cron, UTC) posts <paramref name="Payload"/> (JSON) to the function.</summary>
public sealed record TimerSpec(string Name, string Schedule, string Payload);

/// <summary>A custom host name with its PEM certificate chain and private key (already checked to be a pair).</summary>
public sealed record DomainSpec(string Host, string CertificatePem, string PrivateKeyPem);

public enum FunctionPhase
{
    /// <summary>The backend has nothing for the function.</summary>
    Absent,

    Deploying,
    Ready,
    Failed,
}

/// <summary>What a backend reports for a function: its phase, why it failed, and its instances (running, and ready to serve).</summary>
public sealed record FunctionObservation(FunctionPhase Phase, string? Reason, int Instances, int ReadyInstances);

/// <summary>
/// A worker workload (a computing unit's agent function): replicas of <c>atelier worker</c> that pull jobs, serve no
/// requests and run without traffic. <see cref="Secrets"/> reach the process's environment only (a Kubernetes
/// <c>Secret</c>; on <c>local</c>, the child's environment) and are never logged or put in an object's plain spec.
/// </summary>
public sealed record WorkloadSpec
{
    /// <summary>A DNS-1035 label unique on the platform.</summary>
    public required string Name { get; init; }

    /// <summary>The container image (Kubernetes).</summary>
    public string? Image { get; init; }

    /// <summary>The program to run (local); Kubernetes runs the image's entrypoint with <see cref="Args"/>.</summary>
    public string? Command { get; init; }

    public IReadOnlyList<string> Args { get; init; } = [];

    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, string> Secrets { get; init; } = new Dictionary<string, string>();

    public int Replicas { get; init; }

    /// <summary>GPUs per replica (<c>nvidia.com/gpu</c> limits on Kubernetes).</summary>
    public int Gpus { get; init; }

    /// <summary>Where replicas may run (the instance type's node labels on Kubernetes).</summary>
    public IReadOnlyDictionary<string, string> NodeSelector { get; init; } = new Dictionary<string, string>();

    /// <summary>The health path a replica answers 2xx on once it runs (local: on the <c>{port}</c> given in the arguments).</summary>
    public string HealthPath { get; init; } = "/healthz";

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
}

/// <summary>What a backend reports for a workload: whether it exists, the replicas asked for, and those ready.</summary>
public sealed record WorkloadObservation(bool Exists, int Replicas, int ReadyReplicas, string? Reason);
