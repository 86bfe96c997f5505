using Npgsql;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>
/// A fresh, empty database for one test host: a SQLite file in a temporary folder, or a new database on the
/// PostgreSQL server that scripts/test.sh started (ATELIER_TEST_DB=postgres, ATELIER_TEST_PG=connection string).
/// </summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private TestDatabase(string provider, string connectionString, string? pgName, string folder)
    {
        Provider = provider;
        ConnectionString = connectionString;
        _pgName = pgName;
        Folder = folder;
    }

    private readonly string? _pgName;

    public string Provider { get; }
    public string ConnectionString { get; }
    /// <summary>A temporary folder of this host's own (data directory, defaults files).</summary>
    public string Folder { get; }

    public static string Kind => Environment.GetEnvironmentVariable("ATELIER_TEST_DB") ?? "sqlite";

    public static async Task<TestDatabase> CreateAsync()
    {
        var folder = Directory.CreateTempSubdirectory("atelier-test-").FullName;
        if (Kind == "sqlite")
        {
            return new TestDatabase("sqlite", $"Data Source={Path.Combine(folder, "atelier.db")}", null, folder);
        }

        if (Kind != "postgres")
        {
            throw new InvalidOperationException($"ATELIER_TEST_DB={Kind}: expected sqlite or postgres");
        }

        var admin = Environment.GetEnvironmentVariable("ATELIER_TEST_PG")
                    ?? throw new InvalidOperationException("ATELIER_TEST_DB=postgres needs ATELIER_TEST_PG (scripts/test.sh sets it)");
        var name = "atelier_t_" + Guid.NewGuid().ToString("N")[..16];
        await using (var conn = new NpgsqlConnection(admin))
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        var cs = new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = true, MaxPoolSize = 50 }.ConnectionString;
        return new TestDatabase("postgres", cs, name, folder);
    }

    public async ValueTask DisposeAsync()
    {
        if (_pgName is not null)
        {
            NpgsqlConnection.ClearAllPools();
            await using var conn = new NpgsqlConnection(Environment.GetEnvironmentVariable("ATELIER_TEST_PG"));
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_pgName} WITH (FORCE)", conn);
            await cmd.ExecuteNonQueryAsync();
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // a SQLite file still closing; the temp folder is the OS's to clean
        }
    }
}
