using Atelier.Data;

namespace Atelier.Core.Jobs;

/// <summary>
/// The transactional outbox: a webhook message is inserted by the same transaction that changes the job's state (one
/// INSERT … SELECT that writes nothing when the job has no webhook or its filter leaves the event out), so a state
/// change without its message, or a message without its change, cannot be committed.
/// </summary>
public static class WebhookOutbox
{
    private const string Columns = """("Id", "TenantId", "AppId", "JobId", "Event", "JobAttempt", "Url", "State", "Tries", "MaxTries", "NextAttemptAt", "CreatedAt")""";

    /// <summary>The INSERT … SELECT over <paramref name="source"/> (a table or CTE with the job's columns) with parameters {id}, {event}, {maxTries}, {now}.</summary>
    public static string InsertFrom(string source, int id, int evt, int maxTries, int now) => $$"""
        INSERT INTO webhook_deliveries {{Columns}}
        SELECT {{{id}}}, "TenantId", "AppId", "Id", {{{evt}}}, "Attempt", "WebhookUrl", 'pending', 0, {{{maxTries}}}, {{{now}}}, {{{now}}}
        FROM {{source}} WHERE "WebhookUrl" IS NOT NULL AND "AppId" IS NOT NULL AND "WebhookEvents" LIKE '%,' || {{{evt}}} || ',%'
        """;

    /// <summary>Queues <paramref name="evt"/> of one job when the job asked for it; call inside the state change's transaction.</summary>
    public static async Task<bool> EnqueueAsync(AtelierDb db, string jobId, string evt, int maxTries, TimeProvider clock, CancellationToken ct) =>
        // A raw command (EF's pipeline for a statement cost more than SQLite's own work, inside its one-writer turn).
        await RawCommands.ExecuteAsync(db, OneJob, Parameters(jobId, evt, maxTries, clock), ct) > 0;

    /// <summary>As <see cref="EnqueueAsync"/>, on SQLite's writer (inside the write that changes the job's state).</summary>
    public static bool Enqueue(Data.Sqlite.IRawWriter writer, string jobId, string evt, int maxTries, TimeProvider clock) =>
        writer.Execute(OneJob, Parameters(jobId, evt, maxTries, clock)) > 0;

    private static readonly string OneJob = InsertFrom("jobs", 0, 1, 2, 3) + """ AND "Id" = {4}""";

    private static object?[] Parameters(string jobId, string evt, int maxTries, TimeProvider clock) =>
        [Common.Ids.New("msg", clock), evt, maxTries, clock.GetUtcNow().UtcDateTime, jobId];
}
