using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.A1111;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Workers;
using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using Atelier.Worker.Adapters;
using Atelier.Worker.Delivery;

namespace Atelier.Worker.Runner;

/// <summary>
/// The worker: registers with the server, then each slot long-polls for a lease, runs the job on the engine adapter,
/// reports progress (with its heartbeats), uploads the images through the server and completes or fails the job.
/// The server answers a stale attempt with 409; the worker then drops the job (another attempt owns it). A model its
/// engine does not have is fetched from the server into the model cache (<see cref="ModelCache"/>) when the engine takes
/// fetched models (<see cref="IModelInstaller"/>).
/// </summary>
public sealed partial class WorkerHost : IDisposable
{
    private static readonly JsonSerializerOptions Camel = AtelierJson.Options;
    private static readonly JsonSerializerOptions Snake = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private readonly WorkerOptions _options;
    private readonly HttpClient _http;
    private readonly HttpClient _files;
    private readonly IEngineAdapter _engine;
    private readonly IModelInstaller? _installer;
    private readonly ILogger _logger;
    private readonly string?[] _hot;
    private readonly TimeProvider _clock;
    private (DateTimeOffset At, IReadOnlyList<EngineModel> Models) _models = (DateTimeOffset.MinValue, []);

    public WorkerHost(WorkerOptions options, ILogger logger, IEngineAdapter? engine = null, TimeProvider? clock = null)
    {
        _options = options;
        _clock = clock ?? TimeProvider.System;
        _logger = logger;
        _hot = new string?[options.Slots];
        _http = new HttpClient { BaseAddress = options.Server, Timeout = TimeSpan.FromSeconds(options.WaitSeconds + 30) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", options.Token);
        // English messages from the server: they end up in the job's error, which the API client reads.
        _http.DefaultRequestHeaders.AcceptLanguage.ParseAdd("en");
        _engine = engine ?? CreateEngine(options.Engine, options.ModelsDirectory, options.A1111ModelsDirectory, options);
        // Model files can take minutes: their fetches have no overall timeout, only one on a stalled connection (in the cache).
        _files = new HttpClient { BaseAddress = options.Server, Timeout = Timeout.InfiniteTimeSpan };
        _files.DefaultRequestHeaders.Authorization = _http.DefaultRequestHeaders.Authorization;
        _files.DefaultRequestHeaders.AcceptLanguage.ParseAdd("en");
        if (_engine is IModelInstaller { CanInstall: true } installer && options.ModelCacheBytes > 0)
        {
            _installer = installer;
            Cache = new ModelCache(options.ModelCacheDirectory, options.ModelCacheBytes, _clock);
        }
    }

    /// <summary>The engine jobs run on.</summary>
    public IEngineAdapter Engine => _engine;

    /// <summary>The model cache, when this worker's engine takes fetched models and delivery is on.</summary>
    public ModelCache? Cache { get; }

    private long _completed;
    private long _failed;
    private long _stale;

    public long Completed => Interlocked.Read(ref _completed);
    public long Failed => Interlocked.Read(ref _failed);
    public long Stale => Interlocked.Read(ref _stale);

    /// <summary>
    /// The engine a <c>--engine</c> spec names. The built-in one starts its device first (<see cref="ExecutionProviders.Start"/>),
    /// which throws <see cref="DeviceUnavailableException"/> when the device cannot run and no fallback was asked for.
    /// </summary>
    public static IEngineAdapter CreateEngine(string spec, string modelsDirectory, string? a1111ModelsDirectory = null, WorkerOptions? options = null)
    {
        var (name, arg) = spec.IndexOf('=', StringComparison.Ordinal) is var eq and > 0 ? (spec[..eq], spec[(eq + 1)..]) : (spec, null);
        switch (name)
        {
            case "builtin":
                var device = ExecutionProviders.Start(options?.DeviceSettings() ?? DeviceSettings.Default);
                DemoModel.Ensure(modelsDirectory);
                return new BuiltinAdapter(modelsDirectory, options?.MemoryBudgetBytes ?? 8L << 30, device);
            case "a1111" when arg is not null:
                return new A1111Adapter(new HttpClient { BaseAddress = new Uri(arg.EndsWith('/') ? arg : arg + "/"), Timeout = TimeSpan.FromMinutes(30) },
                    a1111ModelsDirectory);
            case "comfyui" when arg is not null:
                return new ComfyUiAdapter(new HttpClient { BaseAddress = new Uri(arg.EndsWith('/') ? arg : arg + "/"), Timeout = TimeSpan.FromMinutes(30) });
            case "noop":
                return new NoopAdapter(TimeSpan.FromMilliseconds(arg is null ? 0 : int.Parse(arg, CultureInfo.InvariantCulture)));
            default:
                throw new ArgumentException($"--engine must be builtin, a1111=URL, comfyui=URL or noop[=ms], not '{spec}'");
        }
    }

    /// <summary>
    /// Registers (retrying until the server answers), then runs every slot until <paramref name="stop"/>. When the
    /// server refuses the worker's key (401: revoked, replaced or unknown), every slot stops and this throws
    /// <see cref="WorkerKeyRefusedException"/>: polling on with a refused key helps nobody.
    /// </summary>
    /// <summary>True once the server accepted the registration (what the health port reports).</summary>
    public bool Registered { get; private set; }

    public async Task RunAsync(CancellationToken stop)
    {
        await RetryAsync(async () =>
        {
            using var r = await _http.PostAsJsonAsync(WorkerRoutes.Register, new RegisterWorkerRequest(_options.Id, _options.Engine, _options.Slots), Camel, stop);
            await EnsureAsync(r, stop);
        }, stop);
        LogRegistered(_logger, _options.Id, _options.Engine, _options.Slots, _options.Server);
        Registered = true;
        using var run = CancellationTokenSource.CreateLinkedTokenSource(stop);
        WorkerKeyRefusedException? refused = null;
        await Task.WhenAll(Enumerable.Range(0, _options.Slots).Select(async s =>
        {
            try
            {
                await SlotAsync(s, run.Token);
            }
            catch (WorkerKeyRefusedException e)
            {
                Interlocked.CompareExchange(ref refused, e, null);
                await run.CancelAsync();
            }
        }));
        if (refused is not null)
        {
            throw refused;
        }
    }

    private async Task SlotAsync(int slot, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            LeasedJob? lease = null;
            try
            {
                using var r = await _http.PostAsJsonAsync(WorkerRoutes.Lease,
                    new LeaseRequest(_options.Id, slot, _hot, _options.WaitSeconds), Camel, stop);
                if (r.StatusCode == HttpStatusCode.NoContent)
                {
                    continue;
                }

                await EnsureAsync(r, stop);
                lease = (await r.Content.ReadFromJsonAsync<ApiResponse<LeasedJob>>(Camel, stop))!.Data;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or WorkerProtocolException or JsonException)
            {
                LogLeaseFailed(_logger, slot, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), _clock, stop).ContinueWith(_ => { }, TaskScheduler.Default);
                continue;
            }

            // A completed job's call may hand back the slot's next job: run it without another lease request.
            for (var next = lease; next is not null;)
            {
                next = await RunJobAsync(slot, next, stop);
            }
        }
    }

    /// <summary>Runs one leased job to its end; the slot's next job when the completion's call leased one.</summary>
    private async Task<LeasedJob?> RunJobAsync(int slot, LeasedJob lease, CancellationToken stop)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var progress = new LatestProgress();
        using var beating = new CancellationTokenSource();
        var heart = HeartbeatAsync(lease, progress, cancel, beating.Token);
        // The heartbeat stops before the job is finished, so that no beat races the answer.
        async Task StopBeatingAsync()
        {
            await beating.CancelAsync();
            await heart;
        }

        HeldModels? held = null;
        try
        {
            // Pictures the server keeps in its object store come back into the body before anything reads it.
            lease = lease with { Request = await ResolveInputsAsync(lease, cancel.Token) };
            var workflow = lease.Kind == JobKinds.ComfyWorkflow;
            var request = workflow ? new A1111Request() : lease.Request.Deserialize<A1111Request>(Snake) ?? new A1111Request();
            EngineJob job;
            EngineResult result;
            if (workflow)
            {
                // A whole ComfyUI workflow: only a ComfyUI engine runs it, as it is.
                job = new EngineJob { Model = lease.Model?.Name ?? "", JobId = lease.Id, Request = lease.Request };
                result = _engine is ComfyUiAdapter comfy ? await comfy.RunWorkflowAsync(lease.Request, lease.Id, progress, cancel.Token)
                    : throw new EngineFailedException($"this worker's engine ({_engine.Name}) does not run ComfyUI workflows: send them to an agent whose workers run --engine comfyui");
            }
            else
            {
                (job, held) = await ToEngineJobAsync(lease, request, progress, cancel.Token);
                result = await _engine.GenerateAsync(job, progress, cancel.Token);
            }

            var images = new List<WorkerImage>();
            // Small images go inside the completion (one request fewer), as many as the lease's budget holds; the rest are uploaded.
            var inlineLeft = lease.InlineImageBytes ?? 0;
            for (var i = 0; i < result.Images.Count; i++)
            {
                if (result.Images[i].Length <= inlineLeft)
                {
                    inlineLeft -= result.Images[i].Length;
                    images.Add(new WorkerImage("", "", result.Images[i].Length, result.Seeds.ElementAtOrDefault(i), result.Infotexts.ElementAtOrDefault(i) ?? "",
                        Data: result.Images[i]));
                    continue;
                }

                images.Add(await UploadAsync(lease, i, result.Images[i], result.Seeds.ElementAtOrDefault(i), result.Infotexts.ElementAtOrDefault(i) ?? "", stop));
            }

            var info = workflow ? JsonSerializer.Serialize(new { workflow = true, images = result.Images.Count, prompt_id = lease.Id }) : Info(request, job, result, _clock.GetUtcNow());
            await StopBeatingAsync();
            // The slot holds this job's model now: the next lease says so. The cache may evict it again while the
            // completion's lease waits (it did so once the job was complete before the calls were one).
            _hot[slot] = lease.Model?.Key ?? lease.Model?.VersionId;
            held?.Dispose();
            LeasedJob? next;
            try
            {
                next = await CompleteAsync(slot, lease, new WorkerResult(images, info, Parameters(request)), stop);
            }
            catch (WorkerProtocolException e) when (e.Status is 400 or 413 && images.Any(x => x.Data is not null))
            {
                // The server did not take the images inside the completion (the rest of the body left them no room under its
                // body limit, or another replica with a smaller budget answered): upload them, then complete again.
                LogRetrying(_logger, e.Message);
                for (var i = 0; i < images.Count; i++)
                {
                    if (images[i].Data is { } png)
                    {
                        images[i] = await UploadAsync(lease, i, png, images[i].Seed, images[i].Infotext, stop);
                    }
                }

                next = await CompleteAsync(slot, lease, new WorkerResult(images, info, Parameters(request)), stop);
            }

            Interlocked.Increment(ref _completed);
            return next;
        }
        catch (OperationCanceledException) when (_keyRefused)
        {
            // The heartbeat's 401 stopped the job: the key is refused, so stop the worker.
            throw new WorkerKeyRefusedException("the server refused the worker key while a job was running");
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested && !stop.IsCancellationRequested)
        {
            await StopBeatingAsync();
            await FinishAsync(lease, WorkerRoutes.Fail, new FailJobRequest(lease.Attempt, ErrCodes.Canceled, "canceled while running"), stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Shutting down: the lease runs out and the job goes back to the queue.
        }
        catch (StaleAttemptException)
        {
            Interlocked.Increment(ref _stale);
        }
        catch (WorkerKeyRefusedException)
        {
            throw; // nothing more can be said to the server with this key; the lease runs out and the job goes back
        }
        catch (EngineFailedException e)
        {
            await StopBeatingAsync();
            Interlocked.Increment(ref _failed);
            await FinishAsync(lease, WorkerRoutes.Fail, new FailJobRequest(lease.Attempt, ErrorCatalog.b_predict_predictfail.Code, e.Message), stop);
        }
        catch (ModelNotRunnableException e)
        {
            // Not a failure of this worker: no other attempt would do better, so the job ends now with the reason.
            await StopBeatingAsync();
            Interlocked.Increment(ref _failed);
            LogNotRunnable(_logger, lease.Id, e.Message);
            await FinishAsync(lease, WorkerRoutes.Fail, new FailJobRequest(lease.Attempt, ErrorCatalog.p_model_modelfiletypenotsupport.Code, e.Message), stop);
        }
        catch (ModelCacheFullException e)
        {
            await StopBeatingAsync();
            Interlocked.Increment(ref _failed);
            await FinishAsync(lease, WorkerRoutes.Fail, new FailJobRequest(lease.Attempt, ErrorCatalog.b_predict_predictfail.Code, e.Message), stop);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            await StopBeatingAsync();
            Interlocked.Increment(ref _failed);
            LogJobCrashed(_logger, lease.Id, e);
            var message = e is WorkerProtocolException p ? p.ClientMessage : $"the worker failed unexpectedly: {e.Message}";
            await FinishAsync(lease, WorkerRoutes.Fail, new FailJobRequest(lease.Attempt, ErrorCatalog.b_agent_unknownexception.Code, message), stop);
        }
        finally
        {
            await StopBeatingAsync();
            held?.Dispose();
        }

        return null;
    }

    /// <summary>
    /// Renews the lease every third of its length, and sooner (at most 4 a second) when there is progress to report; a
    /// model fetch's bytes at most once a second, its stage at once.
    /// </summary>
    private async Task HeartbeatAsync(LeasedJob lease, LatestProgress progress, CancellationTokenSource cancel, CancellationToken done)
    {
        var renewEvery = TimeSpan.FromSeconds(Math.Max(1, (lease.LeaseUntil - _clock.GetUtcNow().UtcDateTime).TotalSeconds / 3));
        var last = _clock.GetUtcNow();
        var lastFetch = DateTimeOffset.MinValue;
        EngineProgress? sent = null;
        FetchState? sentFetch = null;
        byte[]? sentPreview = null;
        var lastPreview = DateTimeOffset.MinValue;
        while (!done.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), _clock, done);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            // One beat at a time per job: the stage read here cannot be overtaken by the fetch's own report (a
            // "downloading" beat in flight would otherwise land after "generating" and stay the job's last word).
            try
            {
                await progress.Beats.WaitAsync(done);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                var now = progress.Value;
                var fetch = progress.Fetch;
                var fetchNews = fetch != sentFetch && (fetch?.Stage != sentFetch?.Stage || _clock.GetUtcNow() - lastFetch >= TimeSpan.FromSeconds(1));
                if (now == sent && !fetchNews && _clock.GetUtcNow() - last < renewEvery)
                {
                    continue;
                }

                var stage = fetchNews ? fetch : null;
                // A new live preview goes with the beat at most once a second (a few KB each).
                var preview = progress.Preview is { } p && !ReferenceEquals(p, sentPreview) && _clock.GetUtcNow() - lastPreview >= TimeSpan.FromSeconds(1) ? p : null;
                using var r = await _http.PostAsJsonAsync(WorkerRoutes.For(WorkerRoutes.Heartbeat, lease.Id),
                    new HeartbeatRequest(lease.Attempt, now?.Step, now?.Steps, now?.Fraction, stage?.Stage, stage?.Done, stage?.Total,
                        preview is null ? null : Convert.ToBase64String(preview)), Camel, done);
                if (r.StatusCode == HttpStatusCode.Conflict)
                {
                    // The lease is gone (expired and taken by another attempt): stop working on it.
                    Interlocked.Increment(ref _stale);
                    await cancel.CancelAsync();
                    return;
                }

                if (r.StatusCode == HttpStatusCode.Unauthorized)
                {
                    _keyRefused = true;
                    await cancel.CancelAsync();
                    return;
                }

                if (r.IsSuccessStatusCode)
                {
                    var beat = (await r.Content.ReadFromJsonAsync<ApiResponse<HeartbeatDto>>(Camel, done))!.Data;
                    sent = now;
                    last = _clock.GetUtcNow();
                    if (preview is not null)
                    {
                        sentPreview = preview;
                        lastPreview = last;
                    }
                    if (stage is not null)
                    {
                        sentFetch = stage;
                        lastFetch = last;
                    }

                    if (beat.CancelRequested)
                    {
                        await cancel.CancelAsync();
                    }
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
            {
                // The server is away for a moment; the next beat tries again, and the lease has two more thirds to go.
            }
            finally
            {
                progress.Beats.Release();
            }
        }
    }

    /// <summary>Uploads the image of place <paramref name="index"/>; the completion names the key the server answers.</summary>
    private async Task<WorkerImage> UploadAsync(LeasedJob lease, int index, byte[] png, long seed, string infotext, CancellationToken stop)
    {
        using var content = new ByteArrayContent(png);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        // Expect: 100-continue for a large image: a refusal (too large, stale lease) comes before the body is sent,
        // so it is read as an answer instead of a connection the server closed on a body it would not take. A small
        // one goes with its headers (the wait for the server's go-ahead was a round trip on every sync txt2img).
        using var upload = new HttpRequestMessage(HttpMethod.Put, $"{WorkerRoutes.For(WorkerRoutes.Image, lease.Id, index)}?attempt={lease.Attempt}")
        {
            Content = content, Headers = { ExpectContinue = png.Length > ExpectContinueAbove },
        };
        using var put = await _http.SendAsync(upload, stop);
        await EnsureAsync(put, stop);
        var stored = (await put.Content.ReadFromJsonAsync<ApiResponse<StoredImage>>(Camel, stop))!.Data;
        return new WorkerImage(stored.Key, stored.Sha256, stored.Size, seed, infotext, stored.Width, stored.Height);
    }

    /// <summary>Images larger than this are sent after the server's <c>100 Continue</c>; smaller ones at once (one socket buffer's worth).</summary>
    private const int ExpectContinueAbove = 64 * 1024;

    private volatile bool _noCompleteAndLease;

    /// <summary>
    /// Completes the job and leases the slot's next in one call. Only the first try leases: when that call does not
    /// answer, the completion is retried on its own (a job leased by a call whose answer was lost goes back to the queue
    /// when its lease runs out). A server without the combined route gets the plain completion from then on.
    /// </summary>
    private async Task<LeasedJob?> CompleteAsync(int slot, LeasedJob lease, WorkerResult result, CancellationToken stop)
    {
        if (!_noCompleteAndLease)
        {
            try
            {
                using var r = await _http.PostAsJsonAsync(WorkerRoutes.For(WorkerRoutes.CompleteAndLease, lease.Id),
                    new CompleteAndLeaseRequest(lease.Attempt, result, new LeaseRequest(_options.Id, slot, _hot, _options.WaitSeconds)), Camel, stop);
                if (r.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed && ErrorOf(await r.Content.ReadAsStringAsync(stop)) is null)
                {
                    _noCompleteAndLease = true; // a server from before the route: its 404 is not our envelope
                }
                else
                {
                    if (r.StatusCode == HttpStatusCode.NoContent)
                    {
                        return null;
                    }

                    await EnsureAsync(r, stop);
                    return (await r.Content.ReadFromJsonAsync<ApiResponse<LeasedJob>>(Camel, stop))!.Data;
                }
            }
            catch (StaleAttemptException)
            {
                Interlocked.Increment(ref _stale);
                return null;
            }
            catch (Exception e) when (!stop.IsCancellationRequested && e is HttpRequestException or TaskCanceledException or JsonException or WorkerProtocolException)
            {
                // Not answered, or the lease's part refused (before the completion): the plain completion says how it stands.
                LogRetrying(_logger, e.Message);
            }
        }

        await FinishAsync(lease, WorkerRoutes.Complete, new CompleteJobRequest(lease.Attempt, result), stop);
        return null;
    }

    private async Task FinishAsync<T>(LeasedJob lease, string route, T body, CancellationToken stop)
    {
        try
        {
            await RetryAsync(async () =>
            {
                using var r = await _http.PostAsJsonAsync(WorkerRoutes.For(route, lease.Id), body, Camel, stop);
                await EnsureAsync(r, stop);
            }, stop, attempts: 30);
        }
        catch (StaleAttemptException)
        {
            Interlocked.Increment(ref _stale);
        }
    }

    /// <summary>The lease's body with each input picture it names (<see cref="WorkerRoutes.InputPrefix"/>) fetched and put back as base64.</summary>
    private async Task<JsonElement> ResolveInputsAsync(LeasedJob lease, CancellationToken ct)
    {
        if (lease.Request.ValueKind != JsonValueKind.Object || !lease.Request.GetRawText().Contains(WorkerRoutes.InputPrefix, StringComparison.Ordinal))
        {
            return lease.Request;
        }

        var root = System.Text.Json.Nodes.JsonNode.Parse(lease.Request.GetRawText())!.AsObject();
        var fetched = new Dictionary<string, string>(StringComparer.Ordinal);
        // The picture a reference names, as base64; null for a value that is not one (it stays as it is).
        await InputPictures.RewriteAsync(root, async text =>
        {
            if (!text.StartsWith(WorkerRoutes.InputPrefix, StringComparison.Ordinal))
            {
                return null;
            }

            var sha = text[WorkerRoutes.InputPrefix.Length..];
            if (!fetched.TryGetValue(sha, out var base64))
            {
                byte[] bytes = [];
                await RetryAsync(async () =>
                {
                    using var response = await _files.GetAsync(WorkerRoutes.InputOf(lease.Id, sha, lease.Attempt), ct);
                    await EnsureAsync(response, ct);
                    bytes = await response.Content.ReadAsByteArrayAsync(ct);
                }, ct, attempts: 5);
                if (!Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)).Equals(sha, StringComparison.Ordinal))
                {
                    throw new EngineFailedException($"the input picture {sha} came back with other bytes");
                }

                fetched[sha] = base64 = Convert.ToBase64String(bytes);
            }

            return base64;
        });

        using var doc = JsonDocument.Parse(root.ToJsonString());
        return doc.RootElement.Clone();
    }

    /// <summary>The engine's job for the lease, and the fetched model it runs on (held in the cache until the job ends), if any.</summary>
    private async Task<(EngineJob Job, HeldModels Held)> ToEngineJobAsync(LeasedJob lease, A1111Request r, LatestProgress progress, CancellationToken ct)
    {
        byte[]? init = null;
        if (r.InitImages is { Count: > 0 } inits)
        {
            init = Base64Image.Decode(inits[0]) ?? throw new EngineFailedException("init_images[0] is not base64");
        }

        byte[]? mask = null;
        if (init is not null && !string.IsNullOrEmpty(r.Mask))
        {
            mask = Base64Image.Decode(r.Mask) ?? throw new EngineFailedException("mask is not base64");
        }

        var (model, checkpoint) = await EngineModelAsync(lease, progress, ct);
        var held = new HeldModels(checkpoint);
        List<Engine.Lora.NetworkFile> loras, embeddings;
        try
        {
            loras = await FetchNetworksAsync(lease, "lora", held, ct);
            embeddings = await FetchNetworksAsync(lease, "embedding", held, ct);
        }
        catch
        {
            held.Dispose();
            throw;
        }

        return (new EngineJob
        {
            Model = model.Reference, ModelFolder = model.Folder, Prompt = r.Prompt, NegativePrompt = r.NegativePrompt, Seed = r.Seed,
            Sampler = r.SamplerName ?? r.SamplerIndex ?? "Euler", Schedule = string.IsNullOrEmpty(r.Scheduler) ? "Automatic" : r.Scheduler,
            Steps = r.Steps, CfgScale = r.CfgScale, Width = r.Width, Height = r.Height, BatchSize = Math.Max(1, r.BatchSize) * Math.Max(1, r.NIter),
            InitImagePng = init, DenoisingStrength = r.DenoisingStrength ?? 0.75, ResizeMode = r.ResizeMode, JobId = lease.Id,
            MaskPng = mask, Inpaint = EngineJob.InpaintOf(r),
            Vae = r.OverrideSettings?.TryGetValue("sd_vae", out var vae) == true && vae.ValueKind == JsonValueKind.String ? vae.GetString() : null,
            ClipSkip = EngineJob.ClipSkipOf(r.OverrideSettings?.TryGetValue("CLIP_stop_at_last_layers", out var clip) == true ? clip : null),
            Subseed = r.Subseed, SubseedStrength = r.SubseedStrength, SeedResizeFromWidth = r.SeedResizeFromW, SeedResizeFromHeight = r.SeedResizeFromH,
            Hires = EngineJob.HiresOf(r), Iterations = Math.Max(1, r.NIter), ScriptName = r.ScriptName,
            RefinerCheckpoint = EngineJob.RefinerOf(r.Extra).Checkpoint, RefinerSwitchAt = EngineJob.RefinerOf(r.Extra).SwitchAt,
            ScriptArgs = r.Extra?.TryGetValue("script_args", out var scriptArgs) == true ? scriptArgs : null,
            RandnSource = r.OverrideSettings?.TryGetValue("randn_source", out var source) == true && source.ValueKind == JsonValueKind.String
                ? source.GetString()! : global::Atelier.Engine.Sampling.NoiseSources.Gpu,
            EtaNoiseSeedDelta = r.OverrideSettings?.TryGetValue("eta_noise_seed_delta", out var ensd) == true && ensd.ValueKind == JsonValueKind.Number ? (long)ensd.GetDouble() : 0,
            Request = lease.Request.ValueKind == JsonValueKind.Object ? lease.Request : null,
            Loras = loras,
            Embeddings = embeddings,
        }, held);
    }

    /// <summary>
    /// The engine's own reference for the registry's model: the engine's model with the same SHA-256 (of the primary
    /// file); else the version's files fetched into the model cache and installed in the engine, when the engine takes
    /// fetched models and can run this version; else the engine's model of the same name. A version the engine cannot
    /// run and has no model of that name for fails the job at once (<see cref="ModelNotRunnableException"/>).
    /// </summary>
    private async Task<(InstalledModel Model, CachedModel? Held)> EngineModelAsync(LeasedJob lease, LatestProgress progress, CancellationToken ct)
    {
        if (lease.Model is not { } model)
        {
            return (new InstalledModel(""), null);
        }

        if (_clock.GetUtcNow() - _models.At > TimeSpan.FromSeconds(30))
        {
            _models = (_clock.GetUtcNow(), await _engine.ListModelsAsync(ct));
        }

        var byHash = model.Sha256 is null ? null : _models.Models.FirstOrDefault(m => string.Equals(m.Sha256, model.Sha256, StringComparison.OrdinalIgnoreCase));
        if (byHash is not null)
        {
            return (new InstalledModel(byHash.Title), null);
        }

        string? refusal = null;
        if (_installer is not null && Cache is not null && model is { Files.Count: > 0, Type: not null })
        {
            refusal = _installer.CannotRun(model);
            if (refusal is null)
            {
                return await FetchAndInstallAsync(lease, model, progress, ct);
            }
        }

        var byName = _models.Models.FirstOrDefault(m => string.Equals(m.Name, model.Name, StringComparison.OrdinalIgnoreCase));
        if (byName is not null)
        {
            return (new InstalledModel(byName.Title), null);
        }

        return refusal is not null ? throw new ModelNotRunnableException(refusal) : (new InstalledModel(model.Sha256 ?? model.Name), null);
    }

    /// <summary>
    /// The lease's networks of <paramref name="type"/> (LoRAs, textual-inversion embeddings: the tenant's its prompts name,
    /// resolved at submit), fetched into the model cache like a model and held for the job, for an engine that takes
    /// fetched models: their safetensors files by the names the prompt uses.
    /// </summary>
    private async Task<List<Engine.Lora.NetworkFile>> FetchNetworksAsync(LeasedJob lease, string type, HeldModels held, CancellationToken ct)
    {
        var loras = new List<Engine.Lora.NetworkFile>();
        if (_engine is not BuiltinAdapter || Cache is null)
        {
            return loras; // an engine with its own networks (A1111, ComfyUI) reads the prompt itself: nothing to fetch
        }

        foreach (var network in lease.Networks ?? [])
        {
            if (network.Type != type || network.Files is not { Count: > 0 } || network.Files.FirstOrDefault(f => f.Primary) is not { } primary
                || !primary.Path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            {
                continue; // not a safetensors LoRA: the engine says the name was not found
            }

            var files = network.Files.Select(f => new CacheFile(f.Path, f.Sha256, f.Size)).ToList();
            var cached = await Cache.AcquireAsync(files, FetchFor(lease), null, ct);
            held.Add(cached);
            loras.Add(new Engine.Lora.NetworkFile(network.Name, cached.PathOf(primary.Path)));
        }

        return loras;
    }

    /// <summary>How the cache fetches one file of a leased job's models: the worker file route, resuming with a Range from <c>offset</c>.</summary>
    private FetchFile FetchFor(LeasedJob lease) => async (sha, offset, token) =>
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, WorkerRoutes.FileOf(lease.Id, sha, lease.Attempt));
        if (offset > 0)
        {
            request.Headers.Range = new RangeHeaderValue(offset, null);
        }

        var response = await _files.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, token);
        if (!response.IsSuccessStatusCode)
        {
            using (response)
            {
                await EnsureAsync(response, token);
            }
        }

        return response;
    };

    private async Task<(InstalledModel Model, CachedModel? Held)> FetchAndInstallAsync(LeasedJob lease, LeasedModel model, LatestProgress progress, CancellationToken ct)
    {
        var files = model.Files!.Select(f => new CacheFile(f.Path, f.Sha256, f.Size)).ToList();
        var held = await Cache!.AcquireAsync(files, FetchFor(lease), new FetchProgress(progress), ct);
        try
        {
            var installed = await _installer!.InstallAsync(model, held, ct);
            var total = files.DistinctBy(f => f.Sha256).Sum(f => f.Size);
            await ReportFetchedAsync(lease, progress, new FetchState(JobStages.Generating, total, total), ct);
            return (installed, held);
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Tells the server at once that the model is in place (and how many bytes it is), so the job shows it even when it
    /// ends before the next heartbeat. Best effort: the heartbeats say it again.
    /// </summary>
    private async Task ReportFetchedAsync(LeasedJob lease, LatestProgress progress, FetchState state, CancellationToken ct)
    {
        await progress.Beats.WaitAsync(ct);
        try
        {
            progress.Fetch = state;
            using var r = await _http.PostAsJsonAsync(WorkerRoutes.For(WorkerRoutes.Heartbeat, lease.Id),
                new HeartbeatRequest(lease.Attempt, null, null, null, state.Stage, state.Done, state.Total), Camel, ct);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            // the next heartbeat carries it
        }
        finally
        {
            progress.Beats.Release();
        }
    }

    private static string Info(A1111Request req, EngineJob job, EngineResult result, DateTimeOffset at) =>
        JsonSerializer.Serialize(A1111Info.Build(req, job.Sampler, job.Schedule, result.Seeds, result.Infotexts, job.Model, result.ModelHash, at, result.Subseeds));

    /// <summary>A1111 answers with the request as it understood it (defaults filled in), minus the init images.</summary>
    private static JsonElement Parameters(A1111Request req)
    {
        var images = req.InitImages;
        req.InitImages = null;
        var element = JsonSerializer.SerializeToElement(req, Snake);
        req.InitImages = images;
        return element;
    }

    private async Task RetryAsync(Func<Task> action, CancellationToken stop, int attempts = int.MaxValue)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        for (var i = 1; ; i++)
        {
            try
            {
                await action();
                return;
            }
            catch (Exception e) when (i < attempts && !stop.IsCancellationRequested && e is HttpRequestException or TaskCanceledException or WorkerProtocolException { Status: >= 500 })
            {
                LogRetrying(_logger, e.Message);
                await Task.Delay(delay, _clock, stop);
                delay = TimeSpan.FromMilliseconds(Math.Min(5000, delay.TotalMilliseconds * 2));
            }
        }
    }

    private volatile bool _keyRefused;

    private static async Task EnsureAsync(HttpResponseMessage r, CancellationToken ct)
    {
        if (r.IsSuccessStatusCode)
        {
            return;
        }

        var body = await r.Content.ReadAsStringAsync(ct);
        var error = ErrorOf(body);
        if (r.StatusCode == HttpStatusCode.Conflict && error?.ErrCode == ErrCodes.StaleAttempt)
        {
            throw new StaleAttemptException();
        }

        if (r.StatusCode == HttpStatusCode.Unauthorized)
        {
            throw new WorkerKeyRefusedException($"{error?.SubErrCode ?? "401"} {error?.ErrCode}: {error?.SubErrMessage}");
        }

        throw new WorkerProtocolException((int)r.StatusCode, body, r.RequestMessage?.RequestUri?.AbsolutePath ?? "", error?.SubErrMessage);
    }

    private static ErrorEnvelope? ErrorOf(string body)
    {
        try
        {
            return JsonSerializer.Deserialize<ErrorEnvelope>(body, Camel);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _files.Dispose();
        _engine.Dispose();
        Cache?.Dispose();
    }

    [LoggerMessage(5000, LogLevel.Information, "Worker {WorkerId} registered: engine {Engine}, {Slots} slots, server {Server}")]
    private static partial void LogRegistered(ILogger logger, string workerId, string engine, int slots, Uri server);

    [LoggerMessage(5001, LogLevel.Warning, "Slot {Slot}: lease failed ({Reason}); trying again")]
    private static partial void LogLeaseFailed(ILogger logger, int slot, string reason);

    [LoggerMessage(5002, LogLevel.Error, "Job {JobId} failed in the worker")]
    private static partial void LogJobCrashed(ILogger logger, string jobId, Exception exception);

    [LoggerMessage(5003, LogLevel.Warning, "The server did not answer ({Reason}); trying again")]
    private static partial void LogRetrying(ILogger logger, string reason);

    [LoggerMessage(5004, LogLevel.Warning, "Job {JobId} fails at once: its model is not one this engine runs ({Reason})")]
    private static partial void LogNotRunnable(ILogger logger, string jobId, string reason);

    /// <summary>Where a model fetch stands, as the heartbeats report it.</summary>
    private sealed record FetchState(string Stage, long Done, long Total);

    private sealed class LatestProgress : IProgress<EngineProgress>
    {
        public EngineProgress? Value { get; private set; }
        public FetchState? Fetch { get; set; }

        /// <summary>Held while a beat is sent, so the job's beats reach the server in the order their state was read.</summary>
        public SemaphoreSlim Beats { get; } = new(1, 1);

        /// <summary>The newest live preview the engine made (kept between the steps that make none).</summary>
        public byte[]? Preview { get; private set; }

        public void Report(EngineProgress value)
        {
            if (value.Preview is { } preview)
            {
                Preview = preview;
            }

            Value = value;
        }
    }

    private sealed class FetchProgress(LatestProgress progress) : IProgress<CacheProgress>
    {
        public void Report(CacheProgress value) => progress.Fetch = new FetchState(JobStages.Downloading, value.BytesDone, value.BytesTotal);
    }

}

/// <summary>The cached models a job holds (its checkpoint, its LoRAs): released together when the job ends.</summary>
internal sealed class HeldModels(CachedModel? first) : IDisposable
{
    private readonly List<CachedModel> _held = first is null ? [] : [first];

    public void Add(CachedModel model) => _held.Add(model);

    public void Dispose()
    {
        foreach (var model in _held)
        {
            model.Dispose();
        }

        _held.Clear();
    }
}
