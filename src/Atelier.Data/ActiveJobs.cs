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

    /// <summary>How many rows each tenant's ends are spread over on PostgreSQL (<c>tenant_job_ends</c>).</summary>
    public const int EndShards = 16;

    /// <summary>The ends recorded apart are folded into the tenant's counter once they reach this many.</summary>
    public const int FoldAt = 64;

    /// <summary>
    /// PostgreSQL, from the migration <c>ActiveJobEnds</c> on: a job that ends (or is deleted while active) no longer
    /// takes one off the tenant's counter row, which every submit of the tenant locks too (each waited for the other's
    /// commit: the most frequent wait in the queue's bench). It adds one to one of <see cref="EndShards"/> rows of
    /// <c>tenant_job_ends</c> instead, chosen by the job's id, so ends wait only for an end in the same row. The active
    /// count is the counter less the tenant's ends. The insert that becomes active takes the counter row, as before, and
    /// refuses above the cap by that count of the ends committed: an end still in flight is not counted yet, so the cap
    /// may refuse a job an instant early, never admit one over it. Holding the counter row, the insert folds the ends
    /// into it once they reach <see cref="FoldAt"/>, taking only the end rows no end holds at that moment (it never
    /// waits for one: no lock order to keep with the ends), so the counter stays near the true count.
    /// </summary>
    public static readonly string[] PostgresEndsUp =
    [
        """
        CREATE TABLE tenant_job_ends (
            "TenantId" character varying(256) NOT NULL,
            "Shard" integer NOT NULL,
            "Ended" bigint NOT NULL,
            CONSTRAINT "PK_tenant_job_ends" PRIMARY KEY ("TenantId", "Shard"))
        """,
        $"""
        CREATE OR REPLACE FUNCTION atelier_jobs_active() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            was boolean := false;
            now_active boolean := false;
            counted bigint;
            cap integer;
            ended bigint;
            folded bigint;
        BEGIN
            IF TG_OP <> 'INSERT' THEN was := OLD."State" IN ('queued', 'running'); END IF;
            IF TG_OP <> 'DELETE' THEN now_active := NEW."State" IN ('queued', 'running'); END IF;
            IF now_active AND NOT was THEN
                UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" + 1 WHERE "TenantId" = NEW."TenantId"
                RETURNING "ActiveJobs", "MaxConcurrentJobs" INTO counted, cap;
                IF FOUND THEN
                    SELECT COALESCE(SUM("Ended"), 0) INTO ended FROM tenant_job_ends WHERE "TenantId" = NEW."TenantId";
                    IF TG_OP = 'INSERT' AND counted - ended > cap THEN
                        RAISE EXCEPTION '{CapMessage}';
                    END IF;
                    IF ended >= {FoldAt} THEN
                        WITH free AS (SELECT "Shard", "Ended" FROM tenant_job_ends WHERE "TenantId" = NEW."TenantId" AND "Ended" <> 0 FOR UPDATE SKIP LOCKED),
                             zeroed AS (UPDATE tenant_job_ends e SET "Ended" = 0 FROM free
                                        WHERE e."TenantId" = NEW."TenantId" AND e."Shard" = free."Shard" RETURNING free."Ended")
                        SELECT COALESCE(SUM("Ended"), 0) INTO folded FROM zeroed;
                        UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" - folded WHERE "TenantId" = NEW."TenantId";
                    END IF;
                END IF;
            ELSIF was AND NOT now_active THEN
                INSERT INTO tenant_job_ends ("TenantId", "Shard", "Ended") VALUES (OLD."TenantId", hashtext(OLD."Id") & {EndShards - 1}, 1)
                ON CONFLICT ("TenantId", "Shard") DO UPDATE SET "Ended" = tenant_job_ends."Ended" + 1;
            END IF;
            RETURN NULL;
        END
        $$
        """,
    ];

    /// <summary>Back to one counter row: the ends folded in, the function as <see cref="PostgresUp"/> made it.</summary>
    public static readonly string[] PostgresEndsDown =
    [
        // No end may commit between the fold and the drop (its count would go with the table).
        """LOCK TABLE tenant_job_ends IN EXCLUSIVE MODE""",
        """
        UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" - COALESCE((SELECT SUM("Ended") FROM tenant_job_ends e WHERE e."TenantId" = tenant_configs."TenantId"), 0)
        """,
        """DROP TABLE tenant_job_ends""",
        PostgresUp[0].Replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", StringComparison.Ordinal),
    ];

    public static readonly string[] PostgresDown =
    [
        "DROP TRIGGER IF EXISTS jobs_active_insert ON jobs", "DROP TRIGGER IF EXISTS jobs_active_update ON jobs",
        "DROP TRIGGER IF EXISTS jobs_active_delete ON jobs", "DROP FUNCTION IF EXISTS atelier_jobs_active()",
    ];
}
