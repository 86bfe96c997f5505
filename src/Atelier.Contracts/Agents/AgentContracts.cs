namespace Atelier.Contracts.Agents;

/// <summary>A scale template (a tenant's): the bounds and the pace of a unit's autoscaling. Unset fields keep their defaults.</summary>
public sealed record ScaleTemplateRequest(
    string? Name, int? MinReplicas, int? MaxReplicas, double? TargetBusySlots, int? ScaleUpWindowSeconds, int? ScaleDownWindowSeconds,
    int? IdleSecondsBeforeZero);

public sealed record ScaleTemplateDto(
    string Id, string Name, int MinReplicas, int MaxReplicas, double TargetBusySlots, int ScaleUpWindowSeconds, int ScaleDownWindowSeconds,
    int IdleSecondsBeforeZero, DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>An instance type of a pool region: how many replicas of it the region has, and the worker slots of one.</summary>
public sealed record InstanceTypeSpec(string? Name, int? Capacity, int? SlotsPerReplica, int? Gpus, IReadOnlyDictionary<string, string>? NodeSelector);

/// <summary>A named share of an instance type's capacity; <c>TenantId</c> keeps it for one tenant.</summary>
public sealed record SubprojectSpec(string? Name, string? InstanceType, int? Capacity, string? TenantId);

/// <summary>A region config of a pool: the runtime region (its backend) and its instance types and sub-projects.</summary>
public sealed record PoolRegionSpec(string? Region, IReadOnlyList<InstanceTypeSpec>? InstanceTypes, IReadOnlyList<SubprojectSpec>? Subprojects);

/// <summary>A computing pool (the platform admin's); <c>TenantIds</c> empty or absent: every tenant may use it.</summary>
public sealed record ComputingPoolRequest(string? Name, string? Description, IReadOnlyList<PoolRegionSpec>? Regions, IReadOnlyList<string>? TenantIds);

public sealed record InstanceTypeDto(string Name, int Capacity, int SlotsPerReplica, int Gpus, IReadOnlyDictionary<string, string> NodeSelector,
    int Used);

public sealed record SubprojectDto(string Name, string InstanceType, int Capacity, string? TenantId, int Used);

public sealed record PoolRegionDto(string Region, string Backend, IReadOnlyList<InstanceTypeDto> InstanceTypes, IReadOnlyList<SubprojectDto> Subprojects,
    DateTime UpdatedAt);

public sealed record ComputingPoolDto(string Id, string Name, string? Description, IReadOnlyList<PoolRegionDto> Regions, IReadOnlyList<string> TenantIds,
    DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>An agent (a tenant's): a named queue of jobs, served by its computing units' workers, or by the shared workers when it has none.</summary>
public sealed record AgentRequest(string? Name, string? Description);

public sealed record AgentInfoDto(string Id, string Name, string? Description, bool Dedicated, int Units, int Queued, int Running, DateTime CreatedAt,
    DateTime UpdatedAt);

/// <summary>
/// An agent version: the worker image (Kubernetes), engine and extra <c>atelier worker</c> arguments (both backends),
/// environment, and the scale template its units follow.
/// </summary>
public sealed record AgentVersionRequest(
    string? VersionName, string? Image, string? Engine, IReadOnlyList<string>? Args, IReadOnlyDictionary<string, string>? Environment,
    string? AutoScaleTemplateId, string? Description);

public sealed record AgentVersionDto(
    string Id, string AgentId, string VersionName, string Image, string Engine, IReadOnlyList<string> Args, IReadOnlyDictionary<string, string> Environment,
    string AutoScaleTemplateId, string? Description, DateTime CreatedAt);

/// <summary>A computing unit: an agent version placed in a pool region, on an instance type (and sub-project), with replicas.</summary>
public sealed record ComputingUnitRequest(
    string? AgentVersionId, string? ComputingPoolId, string? Region, string? InstanceType, string? Subproject, int? Replicas, bool? Autoscale);

/// <summary>A change of a unit: another version (rolled out by the runtime), replicas (with autoscaling off), autoscaling on or off.</summary>
public sealed record UpdateComputingUnitRequest(string? AgentVersionId, int? Replicas, bool? Autoscale);

public sealed record ComputingUnitDto(
    string Id, string AgentId, string AgentVersionId, string ComputingPoolId, string Region, string InstanceType, string? Subproject, int Replicas,
    bool Autoscale, int SlotsPerReplica, AgentFunctionDto? Function, string? ScaleError, int ScaleFailures, DateTime? RetryScaleAt,
    DateTime CreatedAt, DateTime UpdatedAt);

/// <summary>The workload that runs a unit's workers on its region's backend.</summary>
public sealed record AgentFunctionDto(string Id, string UnitId, string Name, string Region, string KeyId, int AppliedReplicas, string State,
    string? StateReason, int? ReadyReplicas, DateTime UpdatedAt);

/// <summary>One autoscaler decision with its inputs.</summary>
public sealed record ScalingDecisionDto(
    string Id, DateTime At, string Leader, long Term, int Queued, int Running, int SlotsPerReplica, double TargetBusySlots, int From, int Wanted,
    int Available, int To, string Reason, bool Applied, string? Error);

/// <summary>A unit's scaling now and its latest decisions (newest first).</summary>
public sealed record UnitScalingDto(
    string UnitId, int Replicas, int? ReadyReplicas, bool Autoscale, ScaleTemplateDto Template, int SlotsPerReplica, int Queued, int Running,
    DateTime? LastBusyAt, DateTime? UpSince, DateTime? DownSince, string? ScaleError, int ScaleFailures, DateTime? RetryScaleAt,
    IReadOnlyList<ScalingDecisionDto> Decisions);

/// <summary>A worker key of a unit, as the unit's admin sees it (never the secret).</summary>
public sealed record UnitWorkerKeyDto(string Id, string DisplayPrefix, DateTime CreatedAt, DateTime? LastUsedAt, DateTime? RevokedAt);
