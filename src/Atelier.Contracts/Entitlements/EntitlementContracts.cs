namespace Atelier.Contracts.Entitlements;

/// <summary>Sets a scope's limits (tenant or app): a null field leaves it as it is, 0 for a limit removes it.</summary>
public sealed record EntitlementRequest(int? MaxConcurrentJobs, int? MaxJobsPerPeriod, int? PeriodSeconds, long? Credits);

/// <summary>Adds image credits to a scope (a negative number takes some away, never below zero).</summary>
public sealed record CreditsRequest(long? Add);

/// <summary>A scope's limits and remaining credits (null: no limit).</summary>
public sealed record EntitlementDto(string Scope, int? MaxConcurrentJobs, int? MaxJobsPerPeriod, int PeriodSeconds, long? Credits, DateTime UpdatedAt);
