namespace Atelier.Data;

/// <summary>
/// The tenant's count of jobs queued or running (<c>tenant_configs."ActiveJobs"</c>), kept by triggers on <c>jobs</c> in
/// both databases, and the cap it enforces: a job inserted into a tenant already at its <c>MaxConcurrentJobs</c> is
/// refused by the insert itself (the statement fails with <see cref="CapMessage"/>, nothing is written). The submit so
/// needs no count and no lock of its own; the counter row is locked only for the inserting or ending statement's
/// transaction. A job moving between queued and running changes nothing; ending, or being deleted while active, takes one off.
/// </summary>
public static class ActiveJobs
{
    /// <summary>The message of the trigger's refusal (SQLite <c>RAISE(ABORT, …)</c>, PostgreSQL <c>RAISE EXCEPTION</c>).</summary>
    public const string CapMessage = "atelier_tenant_concurrent_jobs";

    /// <summary>The counts as the jobs say they are (the migration that adds the counter sets it from this).</summary>
    public const string Backfill = """
        UPDATE tenant_configs SET "ActiveJobs" = (SELECT COUNT(*) FROM jobs j WHERE j."TenantId" = tenant_configs."TenantId" AND j."State" IN ('queued', 'running'))
        """;

    public static readonly string[] SqliteUp =
    [
        $"""
        CREATE TRIGGER jobs_active_insert AFTER INSERT ON jobs WHEN NEW."State" IN ('queued', 'running')
        BEGIN
            UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" + 1 WHERE "TenantId" = NEW."TenantId";
            SELECT RAISE(ABORT, '{CapMessage}') FROM tenant_configs WHERE "TenantId" = NEW."TenantId" AND "ActiveJobs" > "MaxConcurrentJobs";
        END
        """,
        """
        CREATE TRIGGER jobs_active_update AFTER UPDATE OF "State" ON jobs
        WHEN (OLD."State" IN ('queued', 'running')) <> (NEW."State" IN ('queued', 'running'))
        BEGIN
            UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" + (CASE WHEN NEW."State" IN ('queued', 'running') THEN 1 ELSE -1 END)
            WHERE "TenantId" = NEW."TenantId";
        END
        """,
        """
        CREATE TRIGGER jobs_active_delete AFTER DELETE ON jobs WHEN OLD."State" IN ('queued', 'running')
        BEGIN
            UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" - 1 WHERE "TenantId" = OLD."TenantId";
        END
        """,
        Backfill,
    ];

    public static readonly string[] SqliteDown = ["DROP TRIGGER IF EXISTS jobs_active_insert", "DROP TRIGGER IF EXISTS jobs_active_update", "DROP TRIGGER IF EXISTS jobs_active_delete"];

    public static readonly string[] PostgresUp =
    [
        $"""
        CREATE FUNCTION atelier_jobs_active() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            was boolean := false;
            now_active boolean := false;
            over boolean;
        BEGIN
            IF TG_OP <> 'INSERT' THEN was := OLD."State" IN ('queued', 'running'); END IF;
            IF TG_OP <> 'DELETE' THEN now_active := NEW."State" IN ('queued', 'running'); END IF;
            IF now_active AND NOT was THEN
                UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" + 1 WHERE "TenantId" = NEW."TenantId"
                RETURNING "ActiveJobs" > "MaxConcurrentJobs" INTO over;
                IF TG_OP = 'INSERT' AND over THEN
                    RAISE EXCEPTION '{CapMessage}';
                END IF;
            ELSIF was AND NOT now_active THEN
                UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" - 1 WHERE "TenantId" = OLD."TenantId";
            END IF;
            RETURN NULL;
        END
        $$
        """,
        """CREATE TRIGGER jobs_active_insert AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION atelier_jobs_active()""",
        """CREATE TRIGGER jobs_active_update AFTER UPDATE OF "State" ON jobs FOR EACH ROW EXECUTE FUNCTION atelier_jobs_active()""",
        """CREATE TRIGGER jobs_active_delete AFTER DELETE ON jobs FOR EACH ROW EXECUTE FUNCTION atelier_jobs_active()""",
        Backfill,
    ];

    public static readonly string[] PostgresDown =
    [
        "DROP TRIGGER IF EXISTS jobs_active_insert ON jobs", "DROP TRIGGER IF EXISTS jobs_active_update ON jobs",
        "DROP TRIGGER IF EXISTS jobs_active_delete ON jobs", "DROP FUNCTION IF EXISTS atelier_jobs_active()",
    ];
}
