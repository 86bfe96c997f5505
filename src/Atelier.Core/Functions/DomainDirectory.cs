using System.Security.Cryptography.X509Certificates;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Core.Functions;

/// <summary>A mounted host: the function it serves and the qualifier it routes to.</summary>
public sealed record DomainRoute(string Host, string TenantId, string FunctionId, string? Qualifier);

/// <summary>
/// The mounted custom domains, as the host needs them on every connection and request: which function a
/// <c>Host</c> goes to, and the certificate to present for a TLS server name. Both are cached briefly (absent hosts
/// too, so a stray Host costs one lookup per window); a mount or unmount on this replica evicts at once.
/// </summary>
public sealed class DomainDirectory(IServiceScopeFactory scopes, TimeProvider clock, MasterKeys keys)
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(10);
    private readonly TtlCache<string, DomainRoute?> _routes = new(clock, Lifetime, 10_000, StringComparer.OrdinalIgnoreCase);
    private readonly TtlCache<string, X509Certificate2?> _certificates = new(clock, Lifetime, 10_000, StringComparer.OrdinalIgnoreCase);

    public Task<DomainRoute?> RouteAsync(string host) => _routes.GetOrAddAsync(host, async () =>
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var d = await db.CustomDomains.IgnoreQueryFilters().AsNoTracking().FirstOrDefaultAsync(x => x.Host == host);
        return d is null ? null : new DomainRoute(d.Host, d.TenantId, d.FunctionId, d.Qualifier);
    });

    /// <summary>The certificate with its private key for a TLS server name, or null (the handshake then fails).</summary>
    public X509Certificate2? Certificate(string? serverName)
    {
        if (string.IsNullOrEmpty(serverName))
        {
            return null;
        }

        var host = serverName.ToLowerInvariant();
        return _certificates.GetOrAddAsync(host, async () =>
        {
            using var scope = scopes.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
            var d = await db.CustomDomains.IgnoreQueryFilters().AsNoTracking().FirstOrDefaultAsync(x => x.Host == host);
            if (d is null || !SecretSeal.TryOpen(keys, KeyPurpose.RuntimeSecrets, d.PrivateKeyCipher, out var privateKey))
            {
                return null;
            }

            using var pem = X509Certificate2.CreateFromPem(d.CertificatePem, privateKey);
            // SslStream needs a certificate whose key it can use on every platform: a PKCS#12 round trip gives one.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }).GetAwaiter().GetResult();
    }

    public void Evict(string host)
    {
        _routes.Remove(host);
        _certificates.Remove(host);
    }
}
