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
    /// The insert's fold of the tenant's ends into its counter row, once they reach <see cref="FoldAt"/> (inside the
    /// trigger function, holding the counter row; see <see cref="PostgresEndsUp"/>).
    /// </summary>
    private static readonly string FoldEnds = $"""
        IF ended >= {FoldAt} THEN
            WITH free AS (SELECT "Shard", "Ended" FROM tenant_job_ends WHERE "TenantId" = NEW."TenantId" AND "Ended" <> 0 FOR UPDATE SKIP LOCKED),
                 zeroed AS (UPDATE tenant_job_ends e SET "Ended" = 0 FROM free
                            WHERE e."TenantId" = NEW."TenantId" AND e."Shard" = free."Shard" RETURNING free."Ended")
            SELECT COALESCE(SUM("Ended"), 0) INTO folded FROM zeroed;
            UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" - folded WHERE "TenantId" = NEW."TenantId";
        END IF;
        """;

    /// <summary>A job's end counted in one of <see cref="EndShards"/> rows of <c>tenant_job_ends</c>, by its id.</summary>
    private static readonly string CountEnd = $"""
        INSERT INTO tenant_job_ends ("TenantId", "Shard", "Ended") VALUES (OLD."TenantId", hashtext(OLD."Id") & {EndShards - 1}, 1)
        ON CONFLICT ("TenantId", "Shard") DO UPDATE SET "Ended" = tenant_job_ends."Ended" + 1;
        """;

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
                    {FoldEnds}
                END IF;
            ELSIF was AND NOT now_active THEN
                {CountEnd}
            END IF;
            RETURN NULL;
        END
        $$
        """,
    ];

    /// <summary>The trigger function of the places set aside, with <paramref name="grant"/> as the way an insert that took the counter row sets places aside.</summary>
    private static string CreditsFunction(string grant) => $"""
        CREATE OR REPLACE FUNCTION atelier_jobs_active() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            was boolean := false;
            now_active boolean := false;
            counted bigint;
            cap integer;
            ended bigint;
            folded bigint;
            own integer;
            room bigint;
            granted boolean;
        BEGIN
            IF TG_OP <> 'INSERT' THEN was := OLD."State" IN ('queued', 'running'); END IF;
            IF TG_OP <> 'DELETE' THEN now_active := NEW."State" IN ('queued', 'running'); END IF;
            IF now_active AND NOT was THEN
                own := hashtext(NEW."Id") & {CreditShards - 1};
                UPDATE tenant_job_credits c SET "Credits" = c."Credits" - 1
                WHERE c."TenantId" = NEW."TenantId" AND c."Shard" = (
                    SELECT f."Shard" FROM tenant_job_credits f WHERE f."TenantId" = NEW."TenantId" AND f."Credits" > 0
                    ORDER BY (f."Shard" - own) & {CreditShards - 1} LIMIT 1 FOR UPDATE SKIP LOCKED);
                IF FOUND THEN
                    RETURN NULL;
                END IF;
                UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" + 1 WHERE "TenantId" = NEW."TenantId"
                RETURNING "ActiveJobs", "MaxConcurrentJobs" INTO counted, cap;
                IF FOUND THEN
                    SELECT COALESCE(SUM("Ended"), 0) INTO ended FROM tenant_job_ends WHERE "TenantId" = NEW."TenantId";
                    room := cap - (counted - ended);
                    IF TG_OP = 'INSERT' AND room < 0 THEN
                        UPDATE tenant_job_credits c SET "Credits" = c."Credits" - 1
                        WHERE c."TenantId" = NEW."TenantId" AND c."Shard" = (
                            SELECT f."Shard" FROM tenant_job_credits f WHERE f."TenantId" = NEW."TenantId" AND f."Credits" > 0
                            ORDER BY f."Shard" LIMIT 1 FOR UPDATE);
                        IF NOT FOUND THEN
                            RAISE EXCEPTION '{CapMessage}';
                        END IF;
                        UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" - 1 WHERE "TenantId" = NEW."TenantId";
                        RETURN NULL;
                    END IF;
                    {grant}
                    {FoldEnds}
                END IF;
            ELSIF was AND NOT now_active THEN
                {CountEnd}
            END IF;
            RETURN NULL;
        END
        $$
        """;

    /// <summary>The grant of <see cref="PostgresCreditsUp"/>: into the job's own row, waiting for whoever holds it.</summary>
    private static readonly string WaitingGrant = $"""
                    IF TG_OP = 'INSERT' AND room > 0 THEN
                        room := LEAST(room, {CreditGrant});
                        INSERT INTO tenant_job_credits ("TenantId", "Shard", "Credits") VALUES (NEW."TenantId", own, room)
                        ON CONFLICT ("TenantId", "Shard") DO UPDATE SET "Credits" = tenant_job_credits."Credits" + EXCLUDED."Credits";
                        UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" + room WHERE "TenantId" = NEW."TenantId";
                    END IF;

        """;

    /// <summary>
    /// The grant of <see cref="PostgresGrantsUp"/>: into a row no one holds (the job's own first), else into the job's own
    /// row when it has none yet (found by a plain read), else none (the insert counts its own job only). It never waits for a place row while it
    /// holds the counter row: a submit that looked for a free place may hold a place row it then did not take (a row
    /// whose last place was taken meanwhile stays locked by the look) and wait for the counter row, and the grant that
    /// waited for that row closed a cycle (PostgreSQL's deadlock detector ended one of the two submits with 40P01).
    /// </summary>
    private static readonly string FreeRowGrant = $"""
                    IF TG_OP = 'INSERT' AND room > 0 THEN
                        room := LEAST(room, {CreditGrant});
                        UPDATE tenant_job_credits c SET "Credits" = c."Credits" + room
                        WHERE c."TenantId" = NEW."TenantId" AND c."Shard" = (
                            SELECT f."Shard" FROM tenant_job_credits f WHERE f."TenantId" = NEW."TenantId"
                            ORDER BY (f."Shard" - own) & {CreditShards - 1} LIMIT 1 FOR UPDATE SKIP LOCKED);
                        granted := FOUND;
                        -- A new row only where there is none (a plain read, which waits for no one): an insert that met
                        -- an existing row would wait for a submit that took a place from it and has not committed yet.
                        IF NOT granted AND NOT EXISTS (SELECT 1 FROM tenant_job_credits e WHERE e."TenantId" = NEW."TenantId" AND e."Shard" = own) THEN
                            INSERT INTO tenant_job_credits ("TenantId", "Shard", "Credits") VALUES (NEW."TenantId", own, room)
                            ON CONFLICT ("TenantId", "Shard") DO NOTHING;
                            granted := FOUND;
                        END IF;
                        IF granted THEN
                            UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" + room WHERE "TenantId" = NEW."TenantId";
                        END IF;
                    END IF;

        """;

    /// <summary>
    /// PostgreSQL, from the migration <c>CreditGrantsWithoutWaiting</c> on: the function of <see cref="PostgresCreditsUp"/>
    /// with <see cref="FreeRowGrant"/>, so an insert that holds the counter row never waits for a place row.
    /// </summary>
    public static readonly string[] PostgresGrantsUp = [CreditsFunction(FreeRowGrant)];

    /// <summary>Back to <see cref="PostgresCreditsUp"/>'s function (its grant waits for the job's own row).</summary>
    public static readonly string[] PostgresGrantsDown = [CreditsFunction(WaitingGrant)];

    /// <summary>How many rows each tenant's places set aside are spread over on PostgreSQL (<c>tenant_job_credits</c>).</summary>
    public const int CreditShards = 16;

    /// <summary>The most places one insert that takes the counter row sets aside (at its job's credit row).</summary>
    public const int CreditGrant = 32;

    /// <summary>
    /// PostgreSQL, from the migration <c>ActiveJobCredits</c> on: a submit no longer takes the tenant's counter row as a
    /// rule (every submit of a tenant waited there for the one before it to commit, its disk flush included: the most
    /// frequent wait in the queue's bench once the notifications were out of the commits). An insert that takes the
    /// counter row and finds room under the cap sets up to <see cref="CreditGrant"/> more places aside, counted in the
    /// counter as if their jobs were active, in one of <see cref="CreditShards"/> rows of <c>tenant_job_credits</c>
    /// (the job's own, by its id). A later insert first takes one such place from any row no other submit holds at that
    /// moment (<c>SKIP LOCKED</c>, starting at its own), and then needs no counter row at all. The cap is as exact as
    /// before: the counter less the ends counts the active jobs and the places set aside together, so no place is set
    /// aside beyond the cap, and an insert that finds the counter at the cap waits for a place still set aside (another
    /// submit may hold its row for a moment) before it refuses. A job made active again by an update (never refused) takes
    /// a place too when one is free, so the places never stand beside jobs they were not counted for. A submit that looks
    /// for a place may keep a place row locked that it did not take (its last place went meanwhile) and then take the
    /// counter row, so whoever holds the counter row must not wait for a place row: since <see cref="PostgresGrantsUp"/>
    /// the grant does not; an insert at the cap still does (it must see the places held), and so does lowering the cap
    /// (<c>atelier_tenant_cap_lowered</c>): PostgreSQL's deadlock detector ends such a cycle, after which an insert on its
    /// own is made again (JobQueue.EnqueueAsync), and so is the cap's update (TenancyService.PutConfigAsync); an insert
    /// inside the entitlements' transaction fails. A transaction that
    /// inserts several jobs of a tenant, or takes the counter row after an insert, must take the counter row first
    /// (the entitlements' transaction does). Lowering a tenant's cap takes back every place set aside
    /// (<c>tenant_configs_cap_lowered</c>), so none outlives the room it was set aside from.
    /// </summary>
    public static readonly string[] PostgresCreditsUp =
    [
        """
        CREATE TABLE tenant_job_credits (
            "TenantId" character varying(256) NOT NULL,
            "Shard" integer NOT NULL,
            "Credits" integer NOT NULL CHECK ("Credits" >= 0),
            CONSTRAINT "PK_tenant_job_credits" PRIMARY KEY ("TenantId", "Shard"))
        """,
        CreditsFunction(WaitingGrant),
        """
        CREATE FUNCTION atelier_tenant_cap_lowered() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            revoked bigint;
        BEGIN
            WITH held AS (SELECT "Shard", "Credits" FROM tenant_job_credits WHERE "TenantId" = NEW."TenantId" AND "Credits" > 0 ORDER BY "Shard" FOR UPDATE),
                 zeroed AS (UPDATE tenant_job_credits c SET "Credits" = 0 FROM held
                            WHERE c."TenantId" = NEW."TenantId" AND c."Shard" = held."Shard" RETURNING held."Credits")
            SELECT COALESCE(SUM("Credits"), 0) INTO revoked FROM zeroed;
            NEW."ActiveJobs" := NEW."ActiveJobs" - revoked;
            RETURN NEW;
        END
        $$
        """,
        """
        CREATE TRIGGER tenant_configs_cap_lowered BEFORE UPDATE OF "MaxConcurrentJobs" ON tenant_configs FOR EACH ROW
        WHEN (NEW."MaxConcurrentJobs" < OLD."MaxConcurrentJobs") EXECUTE FUNCTION atelier_tenant_cap_lowered()
        """,
    ];

    /// <summary>
    /// Back to the counter row for every submit: the places set aside taken back, the function as <see cref="PostgresEndsUp"/>
    /// made it. Run with the servers stopped: a submit waiting on the table's lock fails once it is dropped.
    /// </summary>
    public static readonly string[] PostgresCreditsDown =
    [
        // No submit may take a place between the count and the drop.
        """LOCK TABLE tenant_job_credits IN EXCLUSIVE MODE""",
        """
        UPDATE tenant_configs SET "ActiveJobs" = "ActiveJobs" - COALESCE((SELECT SUM("Credits") FROM tenant_job_credits c WHERE c."TenantId" = tenant_configs."TenantId"), 0)
        """,
        """DROP TRIGGER tenant_configs_cap_lowered ON tenant_configs""",
        """DROP FUNCTION atelier_tenant_cap_lowered()""",
        PostgresEndsUp[1],
        """DROP TABLE tenant_job_credits""",
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
