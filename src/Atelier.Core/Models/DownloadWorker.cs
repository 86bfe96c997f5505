using System.Buffers;
using Atelier.Contracts.Errors;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Models;

/// <summary>
/// Downloads queued model files from their URLs: through the address guard, with a size limit, retries on
/// transient failures, and progress written as it goes. A replica holds a file's download lock (<see cref="DownloadLock"/>)
/// for as long as it downloads it, so a file left downloading by a replica that stopped or died (its lock gone with it)
/// is told from one another replica is downloading now: the first is queued again, at start and every
/// <see cref="ModelsOptions.DownloadRescueSeconds"/>, and downloaded anew; a download is never silently lost, nor run twice.
/// </summary>
public sealed partial class DownloadWorker(IServiceScopeFactory scopes, IObjectStore store, DownloadSignal signal, TimeProvider clock,
    IOptions<ModelsOptions> options, Coordination.Locks locks, ILogger<DownloadWorker> logger, StorageSpace space) : BackgroundService
{
    /// <summary>The lock a replica holds while it downloads the model file <paramref name="fileId"/>.</summary>
    public static string DownloadLock(string fileId) => $"model-file:{fileId}:download";

    private readonly HttpClient _http = new(AddressGuard.CreateHandler(options.Value.AllowPrivateNetworks))
    {
        Timeout = TimeSpan.FromSeconds(options.Value.DownloadTimeoutSeconds),
    };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var running = new List<Task>();
        var nextRescue = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (clock.GetUtcNow() >= nextRescue)
                {
                    await RequeueInterruptedAsync(stoppingToken);
                    nextRescue = clock.GetUtcNow().AddSeconds(options.Value.DownloadRescueSeconds);
                }

                running.RemoveAll(t => t.IsCompleted);
                while (running.Count < Math.Max(1, options.Value.DownloadConcurrency) && await ClaimAsync(stoppingToken) is { } claim)
                {
                    running.Add(RunAsync(claim.Id, claim.Held, stoppingToken));
                }

                await signal.WaitAsync(TimeSpan.FromSeconds(running.Count > 0 ? 1 : 5), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                LogLoopFailed(logger, e);
                await Task.Delay(TimeSpan.FromSeconds(1), clock, stoppingToken);
            }
        }

        await Task.WhenAll(running.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
    }

    /// <summary>Queues again every file left downloading whose download lock nobody holds (its replica stopped or died).</summary>
    private async Task RequeueInterruptedAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var downloading = await db.ModelFiles.IgnoreQueryFilters().AsNoTracking().Where(f => f.State == "downloading").Select(f => f.Id).ToListAsync(ct);
        var requeued = 0;
        foreach (var id in downloading)
        {
            await using var held = await locks.TryAcquireAsync(DownloadLock(id), ct);
            if (held is not null)
            {
                requeued += await db.ModelFiles.IgnoreQueryFilters().Where(f => f.Id == id && f.State == "downloading")
                    .ExecuteUpdateAsync(u => u.SetProperty(f => f.State, "queued").SetProperty(f => f.DownloadedBytes, 0L), ct);
            }
        }

        if (requeued > 0)
        {
            LogRequeued(logger, requeued);
        }
    }

    /// <summary>
    /// Claims the oldest queued file: its download lock first (kept until the download ends), then a conditional update,
    /// so two replicas never take the same one.
    /// </summary>
    private async Task<(string Id, IDatabaseLock Held)?> ClaimAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var candidates = await db.ModelFiles.IgnoreQueryFilters().AsNoTracking().Where(f => f.State == "queued")
            .OrderBy(f => f.CreatedAt).Select(f => f.Id).Take(5).ToListAsync(ct);
        var now = clock.GetUtcNow().UtcDateTime;
        foreach (var id in candidates)
        {
            if (await locks.TryAcquireAsync(DownloadLock(id), ct) is not { } held)
            {
                continue;
            }

            try
            {
                var claimed = await db.ModelFiles.IgnoreQueryFilters().Where(f => f.Id == id && f.State == "queued")
                    .ExecuteUpdateAsync(u => u.SetProperty(f => f.State, "downloading").SetProperty(f => f.StartedAt, now).SetProperty(f => f.UpdatedAt, now), ct);
                if (claimed == 1)
                {
                    return (id, held);
                }
            }
            catch
            {
                await held.DisposeAsync();
                throw;
            }

            await held.DisposeAsync();
        }

        return null;
    }

    private async Task RunAsync(string fileId, IDatabaseLock held, CancellationToken ct)
    {
        await using var _ = held;
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var file = await db.ModelFiles.IgnoreQueryFilters().AsNoTracking().FirstAsync(f => f.Id == fileId, ct);
        var model = await db.Models.IgnoreQueryFilters().AsNoTracking().FirstAsync(m => m.Id == file.ModelId, ct);
        var attempts = 0;
        while (true)
        {
            attempts++;
            await Update(db, fileId, u => u.SetProperty(f => f.Attempts, attempts), ct);
            try
            {
                var facts = await DownloadOnceAsync(db, file, ct);
                if (facts.Size == 0)
                {
                    await FailAsync(db, fileId, ErrorCatalog.b_model_modelfiledownloadscoutputempty, "the download finished with no bytes", ct);
                    return;
                }

                ModelFileTypes.CheckContent(model.Type, ModelFileTypes.ExtensionOf(file.AliasName), facts.Format);
                await BlobRegistry.RegisterAsync(db, facts, file.TenantId, clock, ct);
                var now = clock.GetUtcNow().UtcDateTime;
                await Update(db, fileId, u => u.SetProperty(f => f.State, "stored").SetProperty(f => f.Sha256, facts.Sha256)
                    .SetProperty(f => f.Size, facts.Size).SetProperty(f => f.Format, facts.Format).SetProperty(f => f.FinishedAt, now)
                    .SetProperty(f => f.ErrorCode, (string?)null).SetProperty(f => f.ErrorMessage, (string?)null), ct);
                LogDownloaded(logger, fileId, facts.Size);
                return;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return; // the server is stopping: the row stays "downloading", its lock goes, and a replica queues it again
            }
            catch (AtelierException e)
            {
                await FailAsync(db, fileId, e.Code, e.Code == ErrorCatalog.p_model_modelfiletypenotsupport ? e.ErrMessage ?? "" : e.Values.GetValueOrDefault("Reason") ?? e.Message, ct);
                return;
            }
            catch (Exception e) when (IsTransient(e) && attempts < options.Value.DownloadAttempts)
            {
                LogRetry(logger, fileId, attempts, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(options.Value.DownloadRetryDelaySeconds * Math.Pow(2, attempts - 1)), clock, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // Anything else (a network error past its retries, a bug) fails the file rather than leaving it "downloading".
                await FailAsync(db, fileId, ErrorCatalog.p_model_invokemodeldownloaderror, Describe(e), ct);
                return;
            }
        }
    }

    /// <summary>One attempt: follows redirects itself (each hop through the guard), streams to a temporary file while inspecting.</summary>
    private async Task<BlobFacts> DownloadOnceAsync(AtelierDb db, ModelFile file, CancellationToken ct)
    {
        var url = new Uri(file.SourceUrl!);
        HttpResponseMessage? response = null;
        for (var hop = 0; ; hop++)
        {
            response?.Dispose();
            AddressGuard.CheckUrlAtRequest(url.AbsoluteUri, options.Value.AllowPrivateNetworks);
            response = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
            if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } next)
            {
                if (hop >= options.Value.MaxRedirects)
                {
                    throw AddressGuard.Refused($"more than {options.Value.MaxRedirects} redirects");
                }

                url = new Uri(url, next);
                continue;
            }

            break;
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                var status = (int)response.StatusCode;
                if (status is >= 500 or 429 or 408)
                {
                    throw new HttpRequestException($"HTTP {status}", null, response.StatusCode);
                }

                throw AddressGuard.Refused($"the server answered HTTP {status}");
            }

            var total = response.Content.Headers.ContentLength;
            if (total > options.Value.MaxFileBytes)
            {
                throw AddressGuard.Refused($"the file is {total} bytes, over the limit of {options.Value.MaxFileBytes}");
            }

            await Update(db, file.Id, u => u.SetProperty(f => f.TotalBytes, total).SetProperty(f => f.DownloadedBytes, 0L), ct);
            space.EnsureRoom(total ?? 0); // an IOException: retried like any other, the disk may have room by then
            var temp = Path.Combine(UploadService.TempFolder(store), $"{file.Id}.{Guid.NewGuid():N}");
            var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
            try
            {
                using var inspector = new BlobInspector();
                await using (var source = await response.Content.ReadAsStreamAsync(ct))
                await using (var target = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                {
                    var started = clock.GetTimestamp();
                    var lastReport = TimeSpan.Zero;
                    int read;
                    while ((read = await source.ReadAsync(buffer.AsMemory(0, buffer.Length), ct)) > 0)
                    {
                        if (inspector.BytesSeen + read > options.Value.MaxFileBytes)
                        {
                            throw AddressGuard.Refused($"the file is over the limit of {options.Value.MaxFileBytes} bytes");
                        }

                        inspector.Append(buffer.AsSpan(0, read));
                        await target.WriteAsync(buffer.AsMemory(0, read), ct);
                        var elapsed = clock.GetElapsedTime(started);
                        if (elapsed - lastReport > TimeSpan.FromMilliseconds(250))
                        {
                            lastReport = elapsed;
                            var done = inspector.BytesSeen;
                            var rate = (long)(done / Math.Max(0.001, elapsed.TotalSeconds));
                            await Update(db, file.Id, u => u.SetProperty(f => f.DownloadedBytes, done).SetProperty(f => f.BytesPerSecond, rate), ct);
                        }
                    }

                    var seen = inspector.BytesSeen;
                    var finalRate = (long)(seen / Math.Max(0.001, clock.GetElapsedTime(started).TotalSeconds));
                    await Update(db, file.Id, u => u.SetProperty(f => f.DownloadedBytes, seen).SetProperty(f => f.BytesPerSecond, finalRate), ct);
                }

                var facts = inspector.Finish();
                if (total is { } expected && expected != facts.Size)
                {
                    throw new IOException($"the connection ended after {facts.Size} of {expected} bytes");
                }

                var key = ObjectStores.BlobKey(facts.Sha256);
                if (facts.Size > 0 && await store.SizeAsync(key, ct) is null)
                {
                    await store.PutFileAsync(key, temp, ct);
                }

                return facts;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
                File.Delete(temp);
            }
        }
    }

    private static bool IsTransient(Exception e) => e switch
    {
        DownloadRefusedException => false,
        HttpRequestException { InnerException: DownloadRefusedException } => false, // the guard's answer will not change on retry
        HttpRequestException { StatusCode: { } s } => (int)s is >= 500 or 429 or 408,
        HttpRequestException or IOException or TaskCanceledException => true,
        _ => false,
    };

    private static string Describe(Exception e) => e switch
    {
        DownloadRefusedException r => r.Message,
        HttpRequestException { InnerException: DownloadRefusedException r } => r.Message,
        HttpRequestException { StatusCode: { } s } => $"the server answered HTTP {(int)s}",
        TaskCanceledException => "the download timed out",
        _ => e.Message,
    };

    private async Task FailAsync(AtelierDb db, string fileId, ErrorCode code, string reason, CancellationToken ct)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var message = reason.Length > 2000 ? reason[..2000] : reason;
        await Update(db, fileId, u => u.SetProperty(f => f.State, "failed").SetProperty(f => f.ErrorCode, code.Code)
            .SetProperty(f => f.ErrorMessage, message).SetProperty(f => f.FinishedAt, now), ct);
        LogFailed(logger, fileId, code.Code, message);
    }

    private Task<int> Update(AtelierDb db, string fileId,
        Func<Microsoft.EntityFrameworkCore.Query.UpdateSettersBuilder<ModelFile>, Microsoft.EntityFrameworkCore.Query.UpdateSettersBuilder<ModelFile>> set,
        CancellationToken ct)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        return db.ModelFiles.IgnoreQueryFilters().Where(f => f.Id == fileId)
            .ExecuteUpdateAsync(u => set(u.SetProperty(f => f.UpdatedAt, now)), ct);
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    [LoggerMessage(3000, LogLevel.Information, "Model file {FileId} downloaded: {Bytes} bytes")]
    private static partial void LogDownloaded(ILogger logger, string fileId, long bytes);

    [LoggerMessage(3001, LogLevel.Warning, "Model file {FileId} download failed with {Code}: {Reason}")]
    private static partial void LogFailed(ILogger logger, string fileId, string code, string reason);

    [LoggerMessage(3002, LogLevel.Information, "Model file {FileId} download attempt {Attempt} failed, retrying: {Reason}")]
    private static partial void LogRetry(ILogger logger, string fileId, int attempt, string reason);

    [LoggerMessage(3003, LogLevel.Information, "{Count} interrupted downloads queued again")]
    private static partial void LogRequeued(ILogger logger, int count);

    [LoggerMessage(3004, LogLevel.Error, "Download loop failed")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);
}
