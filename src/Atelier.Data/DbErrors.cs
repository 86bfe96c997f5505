using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Atelier.Data;

/// <summary>Reads provider errors without leaking SQL parameter values.</summary>
public static class DbErrors
{
    /// <summary>True for a unique-constraint violation on either provider.</summary>
    public static bool IsUniqueViolation(Exception e) => Root(e) switch
    {
        SqliteException s => s.SqliteErrorCode == 19 && s.SqliteExtendedErrorCode is 2067 or 1555,
        PostgresException p => p.SqlState == PostgresErrorCodes.UniqueViolation,
        _ => false,
    };

    /// <summary>True when the jobs insert trigger refused a job above the tenant's cap (<see cref="ActiveJobs"/>).</summary>
    public static bool IsActiveJobsCap(Exception e) => Root(e) switch
    {
        SqliteException s => s.SqliteErrorCode == 19 && s.Message.Contains(ActiveJobs.CapMessage, StringComparison.Ordinal),
        PostgresException p => p.SqlState == PostgresErrorCodes.RaiseException && p.MessageText == ActiveJobs.CapMessage,
        _ => false,
    };

    /// <summary>True when PostgreSQL ended the statement to break a cycle of waits (40P01); nothing of its transaction was written.</summary>
    public static bool IsDeadlock(Exception e) => Root(e) is PostgresException { SqlState: PostgresErrorCodes.DeadlockDetected };

    /// <summary>
    /// Runs <paramref name="work"/> again, twice at most, when PostgreSQL ends it to break a cycle of waits (40P01) and it
    /// runs on its own: nothing of it was written. Inside a caller's transaction it is not run again (the deadlock
    /// aborted that whole transaction). Whether it runs on its own is read before the work: a catch filter runs before a
    /// save's own transaction is disposed. EF hands a deadlock over wrapped (a transient failure), so any exception whose
    /// cause is one counts.
    /// </summary>
    public static async Task<T> AgainOnDeadlockAsync<T>(AtelierDb db, Func<Task<T>> work)
    {
        var onItsOwn = db.Database.CurrentTransaction is null;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await work();
            }
            catch (Exception e) when (attempt < 3 && onItsOwn && IsDeadlock(e))
            {
                // Nothing was written: the same work goes again.
            }
        }
    }

    /// <summary>True when the exception came from the database (as opposed to our own code).</summary>
    public static bool IsDatabaseFailure(Exception e) => e is DbUpdateException || Root(e) is DbException;

    /// <summary>The internal cause for the envelope's errCode/errMessage: the provider's code and message only.</summary>
    public static (string Code, string Message) Describe(Exception e) => Root(e) switch
    {
        SqliteException s => ($"sqlite_{s.SqliteErrorCode}", s.Message),
        // MessageText holds no row values; Detail can, and Npgsql hides it unless told otherwise.
        PostgresException p => ($"postgres_{p.SqlState}", p.MessageText),
        NpgsqlException n => ("postgres_connection", n.Message),
        DbException d => ("db", d.Message),
        _ => ("db", e.GetType().Name),
    };

    private static Exception Root(Exception e)
    {
        var cur = e;
        while (cur is not DbException && cur.InnerException is not null)
        {
            cur = cur.InnerException;
        }

        return cur;
    }
}
