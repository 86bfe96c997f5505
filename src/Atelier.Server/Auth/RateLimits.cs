using System.Net;
using System.Threading.RateLimiting;
using Atelier.Contracts.Errors;

namespace Atelier.Server.Auth;

/// <summary>
/// The rate limits and caps, on System.Threading.RateLimiting (the limiters under ASP.NET Core's rate-limiting
/// middleware). They are taken here rather than in that middleware because their partitions are the authenticated
/// credential and tenant, which only the access filter knows. A refusal is 429 <c>b_agent_jobpreinvokefail</c> with
/// errCode <c>rate_limited</c> and <c>Retry-After</c>.
/// </summary>
public sealed class RateLimits : IDisposable
{
    private readonly RateLimitOptions _o;
    private readonly PartitionedRateLimiter<string> _credentials;
    private readonly PartitionedRateLimiter<string> _tenants;
    private readonly PartitionedRateLimiter<string> _failedAuth;
    private readonly PartitionedRateLimiter<string> _sessionChecks;
    private readonly PartitionedRateLimiter<string> _streams;
    private readonly PartitionedRateLimiter<string> _syncWaits;

    public RateLimits(Microsoft.Extensions.Options.IOptions<RateLimitOptions> options)
    {
        _o = options.Value;
        _credentials = Buckets(_o.PerCredential);
        _tenants = Buckets(_o.PerTenant);
        _failedAuth = Windows(_o.FailedAuthPerAddress);
        _sessionChecks = Windows(_o.SessionChecksPerAddress);
        _streams = Concurrency(_o.StreamsPerCaller);
        _syncWaits = Concurrency(_o.SyncWaitsPerCaller);
    }

    public bool Enabled => _o.Enabled;

    /// <summary>One request of a credential.</summary>
    public void TakeCredential(string credentialId) =>
        Take(_credentials, credentialId, "this credential", $"{_o.PerCredential.TokensPerPeriod} requests per {_o.PerCredential.PeriodSeconds:0.###} s, {_o.PerCredential.TokenLimit} at most at once");

    /// <summary>One request in a tenant.</summary>
    public void TakeTenant(string tenantId) =>
        Take(_tenants, "t\n" + tenantId, "this tenant", $"{_o.PerTenant.TokensPerPeriod} requests per {_o.PerTenant.PeriodSeconds:0.###} s, {_o.PerTenant.TokenLimit} at most at once");

    /// <summary>Before a presented credential is checked: an address past its failed authentications is refused outright.</summary>
    public void CheckAddress(IPAddress? address)
    {
        if (!_o.Enabled)
        {
            return;
        }

        using var lease = _failedAuth.AttemptAcquire(Key(address), 0);
        if (!lease.IsAcquired)
        {
            throw Refusal(lease, "too many refused credentials from this address");
        }
    }

    /// <summary>A credential was refused: counts it, and past the limit answers 429 instead of the 401.</summary>
    public void CountFailedAuth(IPAddress? address)
    {
        if (!_o.Enabled)
        {
            return;
        }

        using var lease = _failedAuth.AttemptAcquire(Key(address));
        if (!lease.IsAcquired)
        {
            throw Refusal(lease, "too many refused credentials from this address");
        }
    }

    /// <summary>One unauthenticated session check from an address.</summary>
    public void TakeSessionCheck(IPAddress? address) =>
        Take(_sessionChecks, Key(address), "this address", $"{_o.SessionChecksPerAddress.PermitLimit} session checks per {_o.SessionChecksPerAddress.WindowSeconds:0.###} s");

    /// <summary>Holds one of the caller's event streams until the request ends (the lease is disposed with the response).</summary>
    public void HoldStream(HttpContext http, string credentialId) =>
        Hold(http, _streams, credentialId, $"at most {_o.StreamsPerCaller} event streams open at once per credential");

    /// <summary>Holds one of the caller's synchronous waits until the request ends.</summary>
    public void HoldSyncWait(HttpContext http, string credentialId) =>
        Hold(http, _syncWaits, credentialId, $"at most {_o.SyncWaitsPerCaller} synchronous generations at once per credential");

    private void Take(PartitionedRateLimiter<string> limiter, string key, string who, string limit)
    {
        if (!_o.Enabled)
        {
            return;
        }

        using var lease = limiter.AttemptAcquire(key);
        if (!lease.IsAcquired)
        {
            throw Refusal(lease, $"too many requests for {who} (at most {limit})");
        }
    }

    private void Hold(HttpContext http, PartitionedRateLimiter<string> limiter, string key, string limit)
    {
        if (!_o.Enabled)
        {
            return;
        }

        var lease = limiter.AttemptAcquire(key);
        if (!lease.IsAcquired)
        {
            var refusal = Refusal(lease, limit);
            lease.Dispose();
            throw refusal;
        }

        http.Response.RegisterForDispose(lease);
    }

    private static AtelierException Refusal(RateLimitLease lease, string message)
    {
        var retry = lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
        return new AtelierException(ErrorCatalog.b_agent_jobpreinvokefail, errCode: ErrCodes.RateLimited, errMessage: message, status: StatusCodes.Status429TooManyRequests)
        {
            RetryAfterSeconds = (int)Math.Clamp(Math.Ceiling(retry.TotalSeconds), 1, 86400),
        };
    }

    private static string Key(IPAddress? address) => address is null ? "-" : (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();

    private static PartitionedRateLimiter<string> Buckets(RateLimitOptions.Bucket b) =>
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = b.TokenLimit,
            TokensPerPeriod = b.TokensPerPeriod,
            ReplenishmentPeriod = TimeSpan.FromSeconds(b.PeriodSeconds),
            QueueLimit = 0,
            AutoReplenishment = true,
        }), StringComparer.Ordinal);

    private static PartitionedRateLimiter<string> Windows(RateLimitOptions.Window w) =>
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = w.PermitLimit,
            Window = TimeSpan.FromSeconds(w.WindowSeconds),
            QueueLimit = 0,
            AutoReplenishment = true,
        }), StringComparer.Ordinal);

    private static PartitionedRateLimiter<string> Concurrency(int permits) =>
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetConcurrencyLimiter(key, _ => new ConcurrencyLimiterOptions
        {
            PermitLimit = permits,
            QueueLimit = 0,
        }), StringComparer.Ordinal);

    public void Dispose()
    {
        _credentials.Dispose();
        _tenants.Dispose();
        _failedAuth.Dispose();
        _sessionChecks.Dispose();
        _streams.Dispose();
        _syncWaits.Dispose();
    }
}
