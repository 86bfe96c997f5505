namespace Atelier.Data;

/// <summary>A unit of work tried to write a tenant-owned row outside its tenant scope: a bug, never user input.</summary>
public sealed class CrossTenantWriteException(string entity)
    : InvalidOperationException($"A {entity} row was written outside the tenant scope of this unit of work.");
