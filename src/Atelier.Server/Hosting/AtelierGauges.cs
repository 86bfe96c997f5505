using System.Diagnostics.Metrics;
using Atelier.Core.Common;
using Atelier.Core.Functions;
using Atelier.Core.Usage;

namespace Atelier.Server.Hosting;

/// <summary>
/// The gauges of the <c>Atelier</c> meter that read the database and the runtime: queued jobs per agent, active
/// sessions, and the ready instances of each function and unit. A scrape reads a snapshot at most <see cref="MaxAge"/>
/// old, so scraping often costs the database a few grouped reads, and each region's backend one look, every few seconds.
/// </summary>
public sealed class AtelierGauges
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(5);

    private readonly IServiceScopeFactory _scopes;
    private readonly TimeProvider _clock;
    private readonly Lock _gate = new();
    private GaugeSnapshot? _last;
    private long _readAt;

    public AtelierGauges(IMeterFactory meters, IServiceScopeFactory scopes, TimeProvider clock)
    {
        _scopes = scopes;
        _clock = clock;
        var meter = meters.Create(AtelierMeter.Name);
        meter.CreateObservableGauge("atelier.queue.depth", () => Read().Queued.Select(q => new Measurement<long>(q.Value, new KeyValuePair<string, object?>("agent", q.Key))),
            "{job}", "Queued jobs per agent");
        meter.CreateObservableGauge("atelier.sessions.active", () => Read().ActiveSessions, "{session}", "Active end-user sessions");
        meter.CreateObservableGauge("atelier.function.instances", () => Instances("function"), "{instance}",
            "Ready instances per function (on the local backend, this replica's)");
        meter.CreateObservableGauge("atelier.unit.instances", () => Instances("unit"), "{instance}",
            "Ready worker replicas per computing unit (on the local backend, this replica's)");
    }

    private IEnumerable<Measurement<int>> Instances(string kind) => Read().Instances.Where(i => i.Kind == kind).Select(i =>
    {
        KeyValuePair<string, object?>[] tags = i.AgentId is { } agent
            ? [new(kind, i.Id), new("agent", agent), new("tenant", i.TenantId), new("region", i.Region)]
            : [new(kind, i.Id), new("tenant", i.TenantId), new("region", i.Region)];
        return new Measurement<int>(i.Ready, tags);
    });

    private GaugeSnapshot Read()
    {
        lock (_gate)
        {
            if (_last is not null && _clock.GetElapsedTime(_readAt) < MaxAge)
            {
                return _last;
            }

            try
            {
                using var scope = _scopes.CreateScope();
                var counts = scope.ServiceProvider.GetRequiredService<LiveCounts>();
                var (queued, sessions) = counts.ReadAsync(CancellationToken.None).GetAwaiter().GetResult();
                // A backend that hangs (an unreachable cluster) delays a scrape by this much at most, once per MaxAge.
                using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                var instances = scope.ServiceProvider.GetRequiredService<RuntimeInstances>().ReadInstancesAsync(bounded.Token).GetAwaiter().GetResult();
                _last = new GaugeSnapshot(queued, sessions, instances);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A database that does not answer leaves the last snapshot (or none): a scrape never fails for it.
                _last ??= new GaugeSnapshot(new Dictionary<string, long>(), 0, []);
            }

            _readAt = _clock.GetTimestamp();
            return _last;
        }
    }

    private sealed record GaugeSnapshot(IReadOnlyDictionary<string, long> Queued, long ActiveSessions, IReadOnlyList<InstanceReading> Instances);
}
