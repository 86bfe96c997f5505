using System.Net;
using Atelier.Contracts.Errors;
using Atelier.Core.Models;
using Atelier.Core.Security;

namespace Atelier.Core.Tests.Security;

/// <summary>The address guard's classification: what Atelier never calls (downloads, webhooks, moderation, URL tests).</summary>
public class AddressGuardTests
{
    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("10.20.30.40")]
    [InlineData("100.64.0.1")] // CGNAT
    [InlineData("100.127.255.255")]
    [InlineData("127.0.0.1")]
    [InlineData("127.255.255.254")]
    [InlineData("169.254.169.254")] // cloud metadata
    [InlineData("172.16.0.0")]
    [InlineData("172.31.255.255")]
    [InlineData("192.0.2.10")] // documentation
    [InlineData("192.168.1.1")]
    [InlineData("198.18.0.1")] // benchmarking
    [InlineData("224.0.0.251")] // multicast
    [InlineData("255.255.255.255")]
    [InlineData("::")]
    [InlineData("::1")]
    [InlineData("fc00::1")]
    [InlineData("fd12:3456::1")]
    [InlineData("fe80::1")]
    [InlineData("fec0::1")] // deprecated site-local
    [InlineData("ff02::1")]
    [InlineData("::ffff:127.0.0.1")] // IPv4-mapped
    [InlineData("::127.0.0.1")] // IPv4-compatible
    [InlineData("64:ff9b::a9fe:a9fe")] // NAT64
    [InlineData("64:ff9b:1::a00:1")] // local-use NAT64
    [InlineData("2002:7f00:1::1")] // 6to4
    [InlineData("2001:0:4136:e378:8000:63bf:3fff:fdd2")] // Teredo
    [InlineData("2001:db8::1")] // documentation
    [InlineData("100::1")] // discard
    public void IsDenied_PrivateLoopbackAndReservedAddresses_AreDenied(string address)
    {
        Assert.True(AddressGuard.IsDenied(IPAddress.Parse(address)), address);
    }

    [Theory]
    [InlineData("8.8.8.8")]
    [InlineData("1.1.1.1")]
    [InlineData("9.255.255.255")] // just below 10/8
    [InlineData("11.0.0.0")] // just above
    [InlineData("100.63.255.255")] // just below CGNAT
    [InlineData("100.128.0.0")] // just above
    [InlineData("172.15.255.255")] // just below 172.16/12
    [InlineData("172.32.0.0")] // just above
    [InlineData("192.169.0.1")]
    [InlineData("223.255.255.255")] // the last unicast block below multicast
    [InlineData("2001:4860:4860::8888")]
    [InlineData("2606:4700:4700::1111")]
    [InlineData("2001:1::1")] // beside Teredo's 2001::/32
    [InlineData("::ffff:8.8.8.8")] // IPv4-mapped: judged by the IPv4 address inside
    public void IsDenied_PublicAddresses_AreNot(string address)
    {
        Assert.False(AddressGuard.IsDenied(IPAddress.Parse(address)), address);
    }

    [Theory]
    [InlineData("ftp://example.com/a.safetensors", "the scheme ftp is not allowed")]
    [InlineData("https://user:pass@example.com/a", "credentials in the URL")]
    [InlineData("relative/a.safetensors", "not an absolute URL")]
    [InlineData("http://10.0.0.8/a.safetensors", "the address 10.0.0.8 is in a private")]
    [InlineData("http://[::ffff:169.254.169.254]/latest", "is in a private, loopback or reserved range")]
    public void CheckUrlAtRequest_UnusableUrl_IsDownloadErrorWithTheReason(string url, string reason)
    {
        var e = Assert.Throws<AtelierException>(() => AddressGuard.CheckUrlAtRequest(url, allowPrivate: false));
        Assert.Equal(ErrorCatalog.p_model_invokemodeldownloaderror, e.Code);
        Assert.Contains(reason, e.Values["Reason"], StringComparison.Ordinal);
    }

    [Fact]
    public void CheckUrlAtRequest_OverLongUrl_IsRefused()
    {
        var e = Assert.Throws<AtelierException>(() => AddressGuard.CheckUrlAtRequest("https://example.com/" + new string('a', 2048), allowPrivate: false));
        Assert.Contains("at most 2048 characters", e.Values["Reason"], StringComparison.Ordinal);
    }

    [Fact]
    public void CheckUrlAtRequest_PrivateLiteralWhenAllowed_OrAHostName_IsKept()
    {
        Assert.Equal("http://127.0.0.1:8080/a", AddressGuard.CheckUrlAtRequest("http://127.0.0.1:8080/a", allowPrivate: true));
        // A name is checked where it is connected to (every hop, so DNS rebinding is covered), not here.
        Assert.Equal("https://models.example/a%20b.safetensors", AddressGuard.CheckUrlAtRequest("https://models.example/a b.safetensors", allowPrivate: false));
    }

    [Fact]
    public void CheckUrlInput_UnusableUrl_IsInvalidInputNamingTheField()
    {
        Assert.Equal("webhook: the scheme file is not allowed, only http and https",
            Invalid.Input(() => AddressGuard.CheckUrlInput("file:///etc/passwd", "webhook", allowPrivate: false)));
    }
}
