using Atelier.Core.Identity;
using Atelier.Core.Security;
using Atelier.Core.Webhooks;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Platform;

/// <summary>What the start of the platform did, for the host to print and log.</summary>
/// <param name="Provider">The database provider's name.</param>
/// <param name="GeneratedAdminKey">The first platform admin key, when this start created it (shown once), else null.</param>
/// <param name="KeySource">Where the master key comes from.</param>
/// <param name="KeyId">The current master key's id.</param>
/// <param name="KeyCreated">Whether this start created the master key.</param>
/// <param name="Resealed">Webhook secrets sealed again under the current master key.</param>
/// <param name="Unreadable">Webhook secrets sealed under a master key this server does not have.</param>
/// <param name="UnknownBackends">Regions naming a runtime backend this process does not have, as "region (backend)".</param>
public sealed record StartupReport(string Provider, string? GeneratedAdminKey, string KeySource, string KeyId, bool KeyCreated, int Resealed, int Unreadable,
    IReadOnlyList<string> UnknownBackends);

/// <summary>
/// Readies the database before the server takes requests: applies migrations, checks what the provider promises,
/// installs the first platform admin key, and reseals webhook secrets under the current master key.
/// </summary>
public sealed class PlatformStartup(AtelierDb db, IDatabaseProvider provider, DatabaseOptions database, IOptions<AuthOptions> auth, TimeProvider clock,
    MasterKeys keys, WebhookSecretBox secrets, IOptions<WebhookOptions> webhooks, Functions.RuntimeRegions regions)
{
    public async Task<StartupReport> PrepareAsync(string dataDirectory, CancellationToken ct)
    {
        await db.Database.MigrateAsync(ct);
        await provider.VerifyAsync(db, database, ct);
        var generated = await PlatformBootstrap.EnsureAdminKeyAsync(db, auth.Value.BootstrapAdminKey, clock, ct);
        var (resealed, unreadable) = await secrets.ResealAllAsync(db, webhooks.Value.SecretKey, ct);
        var unknown = await Functions.FunctionStartup.EnsureAsync(db, regions.BackendNames, dataDirectory, clock, ct);
        return new StartupReport(provider.Name, generated, keys.Source, keys.CurrentId, keys.Created, resealed, unreadable, unknown);
    }
}
