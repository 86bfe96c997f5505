using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Functions;

/// <summary>A server listening on HTTP and on HTTPS, where the certificate comes from the mounted domains by SNI.</summary>
public sealed class HttpsHost : IAsyncLifetime
{
    public TestHost Host { get; private set; } = null!;
    public Uri Https { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Host = await TestHost.StartAsync(new Dictionary<string, string>(FunctionsHost.Settings) { ["Atelier:Server:Urls"] = "http://127.0.0.1:0;https://127.0.0.1:0" });
        var addresses = Host.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        Https = new Uri(addresses.First(a => a.StartsWith("https://", StringComparison.Ordinal)));
    }

    public async ValueTask DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>Custom domains: the certificate and key are required and checked as a pair; a mounted host is routed by Host and served over HTTPS by SNI.</summary>
public class CustomDomainTests(HttpsHost shared) : IClassFixture<HttpsHost>
{
    private TestHost Host => shared.Host;

    [Fact]
    public async Task Mount_MissingOrMismatchedKeys_AreRefused_AndNothingIsStored()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.PostAsync("/api/v1/services", new { name = "web" })).Created();
        (await admin.PostAsync("/api/v1/services/web/functions", FunctionInstance.Open("site"))).Created();
        const string fn = "/api/v1/services/web/functions/site/custom-domains";
        var (cert, key) = Certificates.SelfSigned("a.example.test");
        var (_, otherKey) = Certificates.SelfSigned("a.example.test");

        (await admin.PostAsync(fn, new { domainName = "a.example.test", privateKey = key })).Error(ErrorCatalog.b_fc_functionpublickeynotfound);
        (await admin.PostAsync(fn, new { domainName = "a.example.test", certificate = cert })).Error(ErrorCatalog.b_fc_functionprivatekeynotfound);
        (await admin.PostAsync(fn, new { domainName = "a.example.test", certificate = cert, privateKey = otherKey })).Error(ErrorCatalog.p_common_inputinvalid);
        (await admin.PostAsync(fn, new { domainName = "a.example.test", certificate = "not a pem", privateKey = key })).Error(ErrorCatalog.p_common_inputinvalid);
        (await admin.PostAsync(fn, new { domainName = "-bad-.test", certificate = cert, privateKey = key })).Error(ErrorCatalog.p_common_inputinvalid);
        (await admin.PostAsync(fn, new { domainName = "b.example.test", certificate = cert, privateKey = key })).Error(ErrorCatalog.p_common_inputinvalid);
        Assert.Empty((await admin.GetAsync(fn)).Ok().EnumerateArray());

        (await admin.PostAsync(fn, new { domainName = "a.example.test", certificate = cert, privateKey = key })).Created();
        // Another tenant cannot take a mounted host.
        var other = await Scenario.NewTenantAsync(Host);
        var otherAdmin = other.AdminOf(Host);
        (await otherAdmin.PostAsync("/api/v1/services", new { name = "web" })).Created();
        (await otherAdmin.PostAsync("/api/v1/services/web/functions", FunctionInstance.Open("site"))).Created();
        (await otherAdmin.PostAsync(fn, new { domainName = "a.example.test", certificate = cert, privateKey = key })).Error(ErrorCatalog.p_common_inputinvalid, 409);
    }

    [Fact]
    public async Task MountedDomain_RoutedByHost_AndServedOverHttpsWithItsCertificate()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.PostAsync("/api/v1/services", new { name = "web" })).Created();
        (await admin.PostAsync("/api/v1/services/web/functions", FunctionInstance.Open("site", new Dictionary<string, string> { ["TEST_GREETING"] = "on my domain" }))).Created();
        (await admin.PostAsync("/api/v1/services/web/functions/site/triggers", new { name = "public", type = "http", anonymous = true, methods = new[] { "GET" } })).Created();
        var host = $"s{Guid.NewGuid():N}"[..12] + ".example.test";
        var (cert, key) = Certificates.SelfSigned(host);
        (await admin.PostAsync("/api/v1/services/web/functions/site/custom-domains", new { domainName = host, certificate = cert, privateKey = key })).Created();

        using (var plain = new HttpRequestMessage(HttpMethod.Get, new Uri(Host.BaseAddress, "/")))
        {
            plain.Headers.Host = host;
            using var response = await Host.Client.Http.SendAsync(plain);
            Assert.Contains("on my domain", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The client trusts exactly the mounted certificate (it is self-signed): the handshake succeeds only if the server presents it.
        using var expected = X509Certificate2.CreateFromPem(cert);
        string? presented = null;
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                TargetHost = host,
                RemoteCertificateValidationCallback = (_, c, _, _) =>
                {
                    presented = c?.GetCertHashString();
                    return presented == expected.Thumbprint;
                },
            },
        };
        using var https = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(60) };
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(shared.Https, "/"));
        request.Headers.Host = host;
        using var answer = await https.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Contains("on my domain", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(expected.Thumbprint, presented);

        // Unmounted: the host is no longer routed, and its certificate is no longer presented.
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/services/web/functions/site/custom-domains/{host}")).Status);
        using var after = new HttpRequestMessage(HttpMethod.Get, new Uri(Host.BaseAddress, "/"));
        after.Headers.Host = host;
        using var gone = await Host.Client.Http.SendAsync(after);
        Assert.DoesNotContain("on my domain", await gone.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
