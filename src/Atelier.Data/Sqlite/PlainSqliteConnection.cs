using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Sqlite.Storage.Internal;
using Microsoft.EntityFrameworkCore.Storage;

namespace Atelier.Data.Sqlite;

#pragma warning disable EF1001 // SqliteRelationalConnection is EF's internal type; this subclass changes one factory method.

/// <summary>
/// EF's SQLite connection without the twelve user functions it adds to every connection (<c>regexp</c>, the
/// <c>ef_*</c> decimal functions and aggregates and the <c>EF_DECIMAL</c> collation). Microsoft.Data.Sqlite registers
/// a connection's functions with the native handle at every open and removes them at every close, so with pooled
/// handles each query that opened the connection paid 24 native calls and their allocations, and they serialized on
/// SQLitePCL's registry (docs/benchmarks.md, the API read). Our model has no decimal column and no query uses <c>Regex</c>
/// through EF, so none of those functions is ever called; a query that needed one would fail with SQLite's
/// "no such function", which the test suite would show.
/// </summary>
internal sealed class PlainSqliteConnection(
    RelationalConnectionDependencies dependencies,
    IRawSqlCommandBuilder rawSqlCommandBuilder,
    IDiagnosticsLogger<DbLoggerCategory.Infrastructure> logger)
    : SqliteRelationalConnection(dependencies, rawSqlCommandBuilder, logger)
{
    protected override DbConnection CreateDbConnection() => new SqliteConnection(GetValidatedConnectionString());
}
