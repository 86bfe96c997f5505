using Atelier.Data.Postgres;
using Atelier.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Atelier.Data;

public static class DatabaseProviders
{
    public static IReadOnlyList<IDatabaseProvider> All { get; } = [new SqliteProvider(), new PostgresProvider()];

    /// <summary>The provider of that name, or null when none has it.</summary>
    public static IDatabaseProvider? Named(string? name) => All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Contexts are pooled (creating one costs more than a simple query). A pooled context may come back with the
    /// tenant scope of its last user, so every lease starts with none: nothing tenant-owned is visible until the
    /// request's access check sets its own tenant.
    /// </summary>
    internal static AtelierDb Lease(AtelierDb db, Sqlite.SqliteReads? reads = null, Sqlite.SqliteWriter? writes = null)
    {
        db.TenantScope = null;
        db.Reads = reads;
        db.Writes = writes;
        return db;
    }

    /// <summary>
    /// Binds <c>Atelier:Database</c> (validated at start) and registers the chosen provider's context as
    /// <see cref="AtelierDb"/>. Unset, the connection string of SQLite is a file in <paramref name="dataDirectory"/>.
    /// </summary>
    public static IServiceCollection AddAtelierData(this IServiceCollection services, IConfiguration configuration, string dataDirectory)
    {
        var section = configuration.GetSection(DatabaseOptions.SectionName);
        services.AddOptions<DatabaseOptions>().Bind(section)
            .PostConfigure(o => o.ConnectionString ??= string.Equals(o.Provider, "sqlite", StringComparison.OrdinalIgnoreCase)
                ? $"Data Source={Path.Combine(dataDirectory, "atelier.db")}"
                : null)
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<DatabaseOptions>, DatabaseOptions.Validator>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<DatabaseOptions>>().Value);

        // The provider is chosen now, by its name (a string: binding cannot refuse it). An unknown name registers
        // nothing here, and the validation at start refuses it with the others.
        var name = section[nameof(DatabaseOptions.Provider)] ?? new DatabaseOptions().Provider;
        if (Named(name) is { } provider)
        {
            services.AddSingleton(provider);
            provider.Register(services);
        }

        return services;
    }
}
