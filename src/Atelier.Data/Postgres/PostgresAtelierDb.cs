using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Atelier.Data.Postgres;

public sealed class PostgresAtelierDb(DbContextOptions<PostgresAtelierDb> options) : AtelierDb(options);

/// <summary>Lets <c>dotnet ef migrations add X --context PostgresAtelierDb</c> build the model.</summary>
public sealed class PostgresDesignFactory : IDesignTimeDbContextFactory<PostgresAtelierDb>
{
    public PostgresAtelierDb CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresAtelierDb>().UseNpgsql("Host=127.0.0.1;Database=design").Options);
}
