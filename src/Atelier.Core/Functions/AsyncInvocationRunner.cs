using System.Net.Http.Headers;
using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Functions;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Runtime;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Functions;

/// <summary>
/// Runs queued async invocations: claims one at a time (a lease in the row, so a replica that dies leaves it to be
/// taken again: at least once), sends it to an instance through the function's backend, keeps the response in the
/// object store, retries a failure with backoff up to the async invoke config's attempts, drops one older than its
/// maximum event age, and hands the outcome to the success or failure destination. Also fires due timer triggers
/// (each firing is an async invocation with the trigger's payload) in the leader alone; every replica runs invocations.
/// </summary>
public sealed partial class AsyncInvocationRunner(IServiceScopeFactory scopes, TimeProvider clock, IOptions<FunctionsOptions> options, AsyncSignal signal,
    IObjectStore store, IOptions<Webhooks.WebhookOptions> webhooks, IEnumerable<IRuntimeBackend> backends, Coordination.Leadership leadership,
    ILogger<AsyncInvocationRunner> logger) : BackgroundService
{
    private static readonly TimeSpan LeaseTime = TimeSpan.FromMinutes(5);
    private readonly HttpClient _instances = new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false }) { Timeout = Timeout.InfiniteTimeSpan };
    private HttpClient? _destinations;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var every = TimeSpan.FromSeconds(options.Value.PollIntervalSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await FireTimersAsync(stoppingToken);
                while (await RunOneAsync(stoppingToken))
                {
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogPassFailed(logger, e);
            }

            try
            {
                await signal.WaitAsync(every, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Turns every due, enabled timer trigger into an async invocation and sets its next run (in the leader; elsewhere nothing).</summary>
    public async Task<int> FireTimersAsync(CancellationToken ct)
    {
        // One replica looks, so each tick is fired once; the claim below keeps that true while two replicas briefly both
        // think they lead (the old leader has not yet noticed its lock is gone).
        if (!leadership.IsLeader)
        {
            return 0;
        }

        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var now = clock.GetUtcNow().UtcDateTime;
        // Timers of functions whose backend fires them itself (kubernetes: PingSources) are not fired here.
        var selfScheduling = backends.Where(b => b.SchedulesTimers).Select(b => b.Name).ToList();
        var due = await db.FunctionTriggers.IgnoreQueryFilters().AsNoTracking()
            .Where(t => t.Kind == "timer" && t.Enabled && t.NextRunAt <= now)
            .Where(t => !db.Functions.IgnoreQueryFilters().Any(f => f.Id == t.FunctionId && db.Regions.Any(r => r.Name == f.Region && selfScheduling.Contains(r.Backend))))
            .Take(100).ToListAsync(ct);
        var fired = 0;
        foreach (var t in due)
        {
            var next = FunctionFeatures.ParseCron(t.Cron).GetNextOccurrence(now, TimeZoneInfo.Utc);
            // Conditional on the old next run: of several replicas, one fires it.
            var claimed = await db.FunctionTriggers.IgnoreQueryFilters().Where(x => x.FunctionId == t.FunctionId && x.Name == t.Name && x.NextRunAt == t.NextRunAt)
                .ExecuteUpdateAsync(u => u.SetProperty(x => x.NextRunAt, next).SetProperty(x => x.LastRunAt, now), ct);
            if (claimed == 0)
            {
                continue;
            }

            db.AsyncInvocations.Add(new AsyncInvocation
            {
                Id = Common.Ids.New("inv", clock), TenantId = t.TenantId, FunctionId = t.FunctionId, Qualifier = t.Qualifier, Method = "POST", Path = "/",
                ContentType = "application/json", RequestBody = System.Text.Encoding.UTF8.GetBytes(t.Payload ?? ""), CreatedAt = now, NextAttemptAt = now,
            });
            db.TenantScope = t.TenantId;
            await db.SaveChangesAsync(ct);
            fired++;
        }

        return fired;
    }

    /// <summary>Claims and runs one due invocation; false when there was none.</summary>
    public async Task<bool> RunOneAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var now = clock.GetUtcNow().UtcDateTime;
        var candidate = await db.AsyncInvocations.IgnoreQueryFilters().AsNoTracking()
            .Where(i => (i.State == AsyncInvocations.Queued && i.NextAttemptAt <= now) || (i.State == AsyncInvocations.Running && i.LeaseUntil < now))
            .OrderBy(i => i.NextAttemptAt).Select(i => new { i.Id, i.State, i.LeaseUntil }).FirstOrDefaultAsync(ct);
        if (candidate is null)
        {
            return false;
        }

        var claimed = await db.AsyncInvocations.IgnoreQueryFilters().Where(i => i.Id == candidate.Id && i.State == candidate.State && i.LeaseUntil == candidate.LeaseUntil)
            .ExecuteUpdateAsync(u => u.SetProperty(i => i.State, AsyncInvocations.Running).SetProperty(i => i.LeaseUntil, now + LeaseTime).SetProperty(i => i.Attempts, i => i.Attempts + 1), ct);
        if (claimed == 0)
        {
            return true;
        }

        var inv = await db.AsyncInvocations.IgnoreQueryFilters().AsNoTracking().FirstAsync(i => i.Id == candidate.Id, ct);
        var f = await db.Functions.IgnoreQueryFilters().AsNoTracking().FirstOrDefaultAsync(x => x.Id == inv.FunctionId, ct);
        if (f is null)
        {
            return true; // deleted with its function (cascade) meanwhile
        }

        db.TenantScope = f.TenantId;
        var config = FunctionFeatures.AsyncConfigOf(f);
        if (now - inv.CreatedAt > TimeSpan.FromSeconds(config.MaxAsyncEventAgeInSeconds))
        {
            await FinishAsync(db, inv, AsyncInvocations.Expired, null, null, null, "older than maxAsyncEventAgeInSeconds", ct);
            await DeliverAsync(db, f, inv, config.DestinationConfig.OnFailure, AsyncInvocations.Expired, null, null, ct);
            return true;
        }

        var (status, contentType, body, error) = await SendAsync(scope.ServiceProvider, f, inv, ct);
        var ok = error is null && status is >= 200 and < 300;
        if (!ok && inv.Attempts <= config.MaxAsyncRetryAttempts)
        {
            var backoff = TimeSpan.FromSeconds(Math.Min(300, Math.Pow(2, inv.Attempts)));
            await db.AsyncInvocations.IgnoreQueryFilters().Where(i => i.Id == inv.Id)
                .ExecuteUpdateAsync(u => u.SetProperty(i => i.State, AsyncInvocations.Queued).SetProperty(i => i.NextAttemptAt, now + backoff)
                    .SetProperty(i => i.LeaseUntil, (DateTime?)null).SetProperty(i => i.StatusCode, status).SetProperty(i => i.Error, error), ct);
            return true;
        }

        string? key = null;
        if (body is not null)
        {
            key = $"functions/{f.TenantId}/{f.Id}/{inv.Id}";
            using var content = new MemoryStream(body);
            await store.PutAsync(key, content, body.Length, ct);
        }

        var state = ok ? AsyncInvocations.Succeeded : AsyncInvocations.Failed;
        await FinishAsync(db, inv, state, status, key, contentType, error, ct);
        await DeliverAsync(db, f, inv, ok ? config.DestinationConfig.OnSuccess : config.DestinationConfig.OnFailure, state, contentType, body, ct);
        return true;
    }

    private async Task<(int? Status, string? ContentType, byte[]? Body, string? Error)> SendAsync(IServiceProvider services, Function f, AsyncInvocation inv, CancellationToken ct)
    {
        var routing = services.GetRequiredService<FunctionRouting>();
        var deployer = services.GetRequiredService<FunctionDeployer>();
        try
        {
            var revision = await routing.RevisionAsync(f, inv.Qualifier, ct);
            var (region, backend) = await deployer.BackendOfAsync(f, ct);
            var timeout = TimeSpan.FromSeconds(FunctionConfigs.Read(f.ConfigJson).TimeoutSeconds);
            using var lease = await backend.AcquireAsync(region, FunctionConfigs.KeyOf(f.Id), revision, timeout, ct);
            using var request = new HttpRequestMessage(new HttpMethod(inv.Method), new Uri(lease.Destination, inv.Path));
            request.Content = new ByteArrayContent(inv.RequestBody);
            if (inv.ContentType is not null && MediaTypeHeaderValue.TryParse(inv.ContentType, out var type))
            {
                request.Content.Headers.ContentType = type;
            }

            request.Headers.TryAddWithoutValidation("X-Atelier-Invocation-Id", inv.Id);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(timeout);
            using var response = await _instances.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            var max = options.Value.AsyncResultMaxBytes;
            if (response.Content.Headers.ContentLength > max)
            {
                return ((int)response.StatusCode, null, null, $"the response is larger than {max} bytes");
            }

            var bytes = await response.Content.ReadAsByteArrayAsync(cts.Token);
            return bytes.Length > max ? ((int)response.StatusCode, null, null, $"the response is larger than {max} bytes")
                : ((int)response.StatusCode, response.Content.Headers.ContentType?.ToString(), bytes, null);
        }
        catch (Exception e) when (e is RuntimeException or HttpRequestException or TaskCanceledException or Contracts.Errors.AtelierException && !ct.IsCancellationRequested)
        {
            return (null, null, null, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private Task<int> FinishAsync(AtelierDb db, AsyncInvocation inv, string state, int? status, string? key, string? contentType, string? error, CancellationToken ct) =>
        db.AsyncInvocations.IgnoreQueryFilters().Where(i => i.Id == inv.Id).ExecuteUpdateAsync(u => u.SetProperty(i => i.State, state).SetProperty(i => i.StatusCode, status)
            .SetProperty(i => i.ResultKey, key).SetProperty(i => i.ResultContentType, contentType).SetProperty(i => i.Error, error)
            .SetProperty(i => i.LeaseUntil, (DateTime?)null).SetProperty(i => i.FinishedAt, clock.GetUtcNow().UtcDateTime), ct);

    /// <summary>A webhook destination gets the outcome as JSON; a function destination gets the result as a new async invocation.</summary>
    private async Task DeliverAsync(AtelierDb db, Function f, AsyncInvocation inv, AsyncDestination? destination, string state, string? contentType, byte[]? body, CancellationToken ct)
    {
        if (destination?.Destination is not { } target)
        {
            return;
        }

        try
        {
            if (target.StartsWith("function:", StringComparison.Ordinal))
            {
                var parts = target["function:".Length..].Split('/');
                var svc = await db.FunctionServices.FirstOrDefaultAsync(s => s.Name == parts[0], ct);
                var next = svc is null ? null : await db.Functions.AsNoTracking().FirstOrDefaultAsync(x => x.ServiceId == svc.Id && x.Name == parts[1], ct);
                if (next is not null)
                {
                    db.AsyncInvocations.Add(new AsyncInvocation
                    {
                        Id = Common.Ids.New("inv", clock), TenantId = f.TenantId, FunctionId = next.Id, Method = "POST", Path = "/", ContentType = contentType,
                        RequestBody = body ?? [], CreatedAt = clock.GetUtcNow().UtcDateTime, NextAttemptAt = clock.GetUtcNow().UtcDateTime,
                    });
                    await db.SaveChangesAsync(ct);
                    signal.Wake();
                }

                return;
            }

            _destinations ??= new HttpClient(Security.AddressGuard.CreateHandler(webhooks.Value.AllowPrivateNetworks)) { Timeout = TimeSpan.FromSeconds(30) };
            var payload = JsonSerializer.Serialize(new
            {
                invocationId = inv.Id, functionName = f.Name, state, contentType,
                result = body is null ? null : AsyncInvocations.IsText(contentType) ? System.Text.Encoding.UTF8.GetString(body) : Convert.ToBase64String(body),
            }, AtelierJson.Options);
            using var content = new StringContent(payload, System.Text.Encoding.UTF8, "application/json");
            using var response = await _destinations.PostAsync(new Uri(target), content, ct);
            LogDelivered(logger, inv.Id, target, (int)response.StatusCode);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or DbUpdateException && !ct.IsCancellationRequested)
        {
            LogDeliveryFailed(logger, inv.Id, e);
        }
    }

    public override void Dispose()
    {
        _instances.Dispose();
        _destinations?.Dispose();
        base.Dispose();
    }

    [LoggerMessage(3200, LogLevel.Warning, "An async invocation pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception e);

    [LoggerMessage(3201, LogLevel.Information, "Async invocation {Id}: destination {Destination} answered {Status}")]
    private static partial void LogDelivered(ILogger logger, string id, string destination, int status);

    [LoggerMessage(3202, LogLevel.Warning, "Async invocation {Id}: its destination could not be reached")]
    private static partial void LogDeliveryFailed(ILogger logger, string id, Exception e);
}
