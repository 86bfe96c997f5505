using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Identity;

/// <summary>Installs the first platform admin key, once: the configured one, or a new one that the caller prints.</summary>
public static class PlatformBootstrap
{
    /// <summary>Returns the new key's secret when one was generated now, otherwise null (a key existed, or was configured).</summary>
    public static async Task<string?> EnsureAdminKeyAsync(AtelierDb db, string? configuredKey, TimeProvider clock, CancellationToken ct)
    {
        if (await db.PlatformKeys.AnyAsync(ct))
        {
            return null;
        }

        string secret;
        if (configuredKey is not null)
        {
            if (!Secrets.IsWellFormed(configuredKey, Secrets.PlatformKeyPrefix))
            {
                throw new InvalidOperationException("Atelier:Auth:BootstrapAdminKey is not a well-formed atpk_ key.");
            }

            secret = configuredKey;
        }
        else
        {
            secret = Secrets.Issue(Secrets.PlatformKeyPrefix);
        }

        db.PlatformKeys.Add(new PlatformKey
        {
            Id = Ids.New("pk", clock), SecretHash = Secrets.Hash(secret), DisplayPrefix = Secrets.DisplayPrefix(secret),
            CreatedAt = clock.GetUtcNow().UtcDateTime,
        });
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException e) when (DbErrors.IsUniqueViolation(e))
        {
            return null; // another replica installed the same configured key first
        }

        return configuredKey is null ? secret : null;
    }
}
