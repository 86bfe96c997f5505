using Atelier.Data;

namespace Atelier.Core.Common;

/// <summary>Tells the host which exceptions are the database's (unreachable, refused, timed out) and what its code for them is.</summary>
public static class DatabaseFailures
{
    public static bool Is(Exception e) => DbErrors.IsDatabaseFailure(e);

    /// <summary>The provider's code (<c>sqlite_N</c>, <c>postgres_SQLSTATE</c>, …) and its message.</summary>
    public static (string Code, string Message) Describe(Exception e) => DbErrors.Describe(e);
}
