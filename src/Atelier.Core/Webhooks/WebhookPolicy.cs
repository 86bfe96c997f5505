using Atelier.Core.Jobs;
using Atelier.Core.Security;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Webhooks;

/// <summary>The webhook rules jobs follow, from <see cref="WebhookOptions"/>.</summary>
public sealed class WebhookPolicy(IOptions<WebhookOptions> options) : IWebhookPolicy
{
    public int MaxTries => Math.Max(1, options.Value.Schedule.Length);

    /// <summary>An absolute http(s) URL, no credentials, no literal address in a private, loopback or reserved range (unless allowed).</summary>
    public string CheckUrl(string url, string field) =>
        AddressGuard.CheckUrlInput(url, field, options.Value.AllowPrivateNetworks || WebhookRelay.IsAllowedEndpoint(options.Value, url));
}
