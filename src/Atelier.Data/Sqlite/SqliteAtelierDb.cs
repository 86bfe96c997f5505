using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Atelier.Data.Sqlite;

public sealed class SqliteAtelierDb(DbContextOptions<SqliteAtelierDb> options) : AtelierDb(options);

/// <summary>Lets <c>dotnet ef migrations add X --context SqliteAtelierDb</c> build the model.</summary>
public sealed class SqliteDesignFactory : IDesignTimeDbContextFactory<SqliteAtelierDb>
{
    public SqliteAtelierDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteAtelierDb>().UseSqlite("Data Source=design.db").Options);
}
