using Atelier.Worker.Runner;
using Microsoft.Extensions.Logging.Abstractions;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>
/// <c>atelier worker</c>'s own loop (the same <see cref="WorkerHost"/> the command runs), in this process, against a test
/// server over real HTTP. The crash tests run it as a real process instead.
/// </summary>
public sealed class InProcessWorker : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private InProcessWorker(WorkerHost host)
    {
        Host = host;
        _run = Task.Run(() => host.RunAsync(_stop.Token));
    }

    public WorkerHost Host { get; }

    /// <param name="adapter">An engine of the test's own (a fake of <see cref="IEngineAdapter"/>) instead of <paramref name="engine"/>.</param>
    /// <param name="modelCache">The model cache folder (default: one of this worker's own in the test's data folder).</param>
    public static async Task<InProcessWorker> StartAsync(TestHost host, string engine = "builtin", int slots = 1, string id = "test-worker",
        Atelier.Worker.Adapters.IEngineAdapter? adapter = null, string? modelCache = null, long modelCacheBytes = WorkerOptions.DefaultModelCacheBytes,
        string? a1111Models = null, string? models = null)
    {
        var key = (await host.Admin().PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
        var options = new WorkerOptions
        {
            Server = host.Client.Http.BaseAddress!, Token = key, Engine = engine, Slots = slots, Id = id,
            ModelsDirectory = models ?? Path.Combine(host.Database.Folder, "data", "models"), WaitSeconds = 2,
            ModelCacheDirectory = modelCache ?? Path.Combine(host.Database.Folder, "data", $"model-cache-{id}"), ModelCacheBytes = modelCacheBytes,
            A1111ModelsDirectory = a1111Models,
        };
        return new InProcessWorker(new WorkerHost(options, NullLogger.Instance, adapter));
    }

    /// <summary>
    /// Revokes every worker key of <paramref name="host"/>. A stopped worker's last lease request may still be parked on
    /// the server (its client left, the server has not noticed yet) and would claim the next job queued; the claim
    /// statement refuses a revoked key, so after this no stopped worker can take a job the test means to stay queued or
    /// to go to a worker it starts next.
    /// </summary>
    public static async Task RevokeEveryKeyAsync(TestHost host)
    {
        foreach (var key in (await host.Admin().GetAsync("/api/v1/platform/worker-keys")).Ok().EnumerateArray())
        {
            (await host.Admin().PostAsync($"/api/v1/platform/worker-keys/{key.GetProperty("id").GetString()}/revoke")).Ok();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _run.WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (OperationCanceledException)
        {
            // stopped
        }

        Host.Dispose();
        _stop.Dispose();
    }
}
