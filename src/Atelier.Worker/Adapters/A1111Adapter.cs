using System.Net.Http.Json;
using System.Text.Json;
using Atelier.Contracts.Workers;
using Atelier.Worker.Delivery;

namespace Atelier.Worker.Adapters;

/// <summary>
/// A client of a running AUTOMATIC1111 server (or <c>atelier engine</c>). The checkpoint is resolved through
/// <c>/sd-models</c> and passed per request in <c>override_settings</c> (never through POST <c>/options</c>, which
/// changes the server for everyone); an unknown one is refused here, since A1111 would silently use whatever is loaded;
/// and the model hash in the answer's <c>info</c> is checked against the one asked for. Given the server's checkpoint
/// folder (<c>--a1111-models</c>), a fetched model is copied there (a checkpoint's primary file; an ONNX folder, for an
/// <c>atelier engine</c> behind this adapter) and the server is told to <c>refresh-checkpoints</c>.
/// </summary>
public sealed class A1111Adapter(HttpClient http, string? modelsDirectory = null) : IEngineAdapter, IModelInstaller
{
    private static readonly JsonSerializerOptions Snake = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public string Name => "a1111";

    public async Task<IReadOnlyList<EngineModel>> ListModelsAsync(CancellationToken ct)
    {
        var models = await http.GetFromJsonAsync<JsonElement>("sdapi/v1/sd-models", ct);
        return [.. models.EnumerateArray().Select(m => new EngineModel(
            m.GetProperty("model_name").GetString()!, m.GetProperty("title").GetString()!,
            m.TryGetProperty("hash", out var h) && h.ValueKind == JsonValueKind.String ? h.GetString()! : "",
            m.TryGetProperty("sha256", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null))];
    }

    public async Task<EngineResult> GenerateAsync(EngineJob job, IProgress<EngineProgress>? progress, CancellationToken ct)
    {
        var models = await ListModelsAsync(ct);
        var model = models.FirstOrDefault(m => Matches(m, job.Model))
                    ?? throw new EngineFailedException($"checkpoint '{job.Model}' is not on the AUTOMATIC1111 server");
        var taskId = $"task(atelier-{job.JobId})";
        // The caller's whole body first (every field A1111 or its extensions read: alwayson_scripts, script_name and
        // script_args, hires fix, …), then what this adapter must decide: the checkpoint (the engine's title for the
        // registry's model, beside the caller's other override_settings), the task id for progress, images sent back.
        var body = new Dictionary<string, object?>(StringComparer.Ordinal);
        var overrides = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (job.Request is { ValueKind: JsonValueKind.Object } raw)
        {
            foreach (var field in raw.EnumerateObject())
            {
                body[field.Name] = field.Value;
            }

            if (raw.TryGetProperty("override_settings", out var settings) && settings.ValueKind == JsonValueKind.Object)
            {
                foreach (var setting in settings.EnumerateObject())
                {
                    overrides[setting.Name] = setting.Value;
                }
            }
        }
        else
        {
            body["batch_size"] = job.BatchSize;
            body["n_iter"] = 1;
        }

        overrides["sd_model_checkpoint"] = model.Title;
        overrides.Remove("sd_checkpoint_hash");
        body["prompt"] = job.Prompt;
        body["negative_prompt"] = job.NegativePrompt;
        body["seed"] = job.Seed;
        body["sampler_name"] = job.Sampler;
        body["scheduler"] = job.Schedule;
        body["steps"] = job.Steps;
        body["cfg_scale"] = job.CfgScale;
        body["width"] = job.Width;
        body["height"] = job.Height;
        body["force_task_id"] = taskId;
        body["send_images"] = true;
        body["save_images"] = false;
        body["override_settings"] = overrides;
        body.TryAdd("override_settings_restore_afterwards", false);
        var path = "sdapi/v1/txt2img";
        if (job.InitImagePng is not null)
        {
            path = "sdapi/v1/img2img";
            body["init_images"] = new[] { Convert.ToBase64String(job.InitImagePng) };
            body["denoising_strength"] = job.DenoisingStrength;
        }
        else
        {
            body.Remove("init_images");
        }

        using var watch = progress is null ? null : new CancellationTokenSource();
        var poller = progress is null ? Task.CompletedTask : PollProgressAsync(taskId, progress, watch!.Token);
        using var cancel = ct.Register(() => _ = http.PostAsync("sdapi/v1/interrupt", null, CancellationToken.None));
        HttpResponseMessage response;
        try
        {
            response = await http.PostAsJsonAsync(path, body, Snake, ct);
        }
        finally
        {
            watch?.Cancel();
            await poller.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode)
            {
                var detail = TryDetail(text) ?? text;
                throw new EngineFailedException($"AUTOMATIC1111 answered {(int)response.StatusCode}: {detail}");
            }

            ct.ThrowIfCancellationRequested();
            using var doc = JsonDocument.Parse(text);
            var info = JsonDocument.Parse(doc.RootElement.GetProperty("info").GetString() ?? "{}").RootElement;
            var hash = info.TryGetProperty("sd_model_hash", out var h) ? h.GetString() ?? "" : "";
            if (!string.Equals(hash, model.ShortHash, StringComparison.OrdinalIgnoreCase))
            {
                throw new EngineFailedException($"AUTOMATIC1111 generated with model hash '{hash}', not '{model.ShortHash}' as asked");
            }

            var images = doc.RootElement.GetProperty("images").EnumerateArray().Select(i => Convert.FromBase64String(i.GetString()!)).ToList();
            var seeds = info.TryGetProperty("all_seeds", out var s) ? s.EnumerateArray().Select(x => x.GetInt64()).ToList() : [];
            var infotexts = info.TryGetProperty("infotexts", out var t) ? t.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : [];
            return new EngineResult(images, seeds, hash, infotexts);
        }
    }

    private async Task PollProgressAsync(string taskId, IProgress<EngineProgress> progress, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(200, ct);
                var p = await http.GetFromJsonAsync<JsonElement>($"sdapi/v1/progress?skip_current_image=true&id_task={Uri.EscapeDataString(taskId)}", ct);
                var state = p.GetProperty("state");
                progress.Report(new EngineProgress(state.GetProperty("sampling_step").GetInt32(), state.GetProperty("sampling_steps").GetInt32(),
                    p.GetProperty("progress").GetDouble()));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or HttpRequestException or JsonException)
        {
            // progress is best effort; the result decides
        }
    }

    private static bool Matches(EngineModel m, string reference) =>
        string.Equals(m.Title, reference, StringComparison.OrdinalIgnoreCase) || string.Equals(m.Name, reference, StringComparison.OrdinalIgnoreCase)
        || (m.ShortHash.Length > 0 && string.Equals(m.ShortHash, reference, StringComparison.OrdinalIgnoreCase))
        || (m.Sha256 is not null && string.Equals(m.Sha256, reference, StringComparison.OrdinalIgnoreCase));

    private static string? TryDetail(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.TryGetProperty("detail", out var d) ? d.ToString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public bool CanInstall => modelsDirectory is not null;

    public string? CannotRun(LeasedModel model)
    {
        switch (model.Type)
        {
            case "checkpoint":
                var primary = model.Files?.FirstOrDefault(f => f.Primary)?.Path;
                return primary is not null && (primary.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || primary.EndsWith(".ckpt", StringComparison.OrdinalIgnoreCase))
                    ? null
                    : $"checkpoint (AUTOMATIC1111 loads a .safetensors or .ckpt primary file; {model.Name} {model.VersionName} has {primary ?? "no primary file"})";
            case "onnx":
                var (_, problem) = OnnxFolders.RootOf(model);
                return problem is null ? null : $"onnx (an engine behind the AUTOMATIC1111 API takes diffusers ONNX folders; {model.Name} {model.VersionName} is not one: {problem})";
            default:
                return $"checkpoint (AUTOMATIC1111 runs checkpoints; {model.Name} {model.VersionName} is a {model.Type})";
        }
    }

    public async Task<InstalledModel> InstallAsync(LeasedModel model, CachedModel files, CancellationToken ct)
    {
        var folder = modelsDirectory ?? throw new InvalidOperationException("no AUTOMATIC1111 models folder (--a1111-models)");
        Directory.CreateDirectory(folder);
        string name, sha;
        if (model.Type == "onnx")
        {
            var (root, _) = OnnxFolders.RootOf(model);
            sha = OnnxFolders.UnetSha256(model, root!);
            name = $"{SafeName(model.Name)}-{sha[..10]}";
            var target = Path.Combine(folder, name);
            var mine = model.Files!.Where(f => f.Path.StartsWith(root!, StringComparison.Ordinal)).ToList();
            if (!mine.All(f => SizeOf(Path.Combine(target, f.Path[root!.Length..])) == f.Size))
            {
                // Copied beside it, then moved in: the server never scans a half-copied folder.
                var staging = Path.Combine(folder, $".{name}.{Guid.NewGuid():N}");
                foreach (var f in mine)
                {
                    var to = Path.Combine(staging, f.Path[root!.Length..].Replace('/', Path.DirectorySeparatorChar));
                    Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                    File.Copy(files.PathOf(f.Path), to);
                }

                if (Directory.Exists(target))
                {
                    Directory.Delete(target, recursive: true);
                }

                Directory.Move(staging, target);
            }
        }
        else
        {
            var primary = model.Files!.First(f => f.Primary);
            sha = primary.Sha256;
            var file = $"{SafeName(model.Name)}-{sha[..10]}{Path.GetExtension(primary.Path).ToLowerInvariant()}";
            name = Path.GetFileNameWithoutExtension(file);
            var target = Path.Combine(folder, file);
            if (SizeOf(target) != primary.Size)
            {
                var staging = Path.Combine(folder, $".{file}.{Guid.NewGuid():N}");
                File.Copy(files.PathOf(primary.Path), staging);
                File.Move(staging, target, overwrite: true);
            }
        }

        using (var refresh = await http.PostAsync("sdapi/v1/refresh-checkpoints", null, ct))
        {
            if (!refresh.IsSuccessStatusCode)
            {
                throw new EngineFailedException($"AUTOMATIC1111 answered {(int)refresh.StatusCode} to refresh-checkpoints");
            }
        }

        var listed = (await ListModelsAsync(ct)).FirstOrDefault(m => string.Equals(m.Sha256, sha, StringComparison.OrdinalIgnoreCase) || m.Name == name)
                     ?? throw new EngineFailedException($"AUTOMATIC1111 does not list {name} after refresh-checkpoints (is {folder} its checkpoint folder?)");
        return new InstalledModel(listed.Title);
    }

    private static long SizeOf(string path) => File.Exists(path) ? new FileInfo(path).Length : -1;

    /// <summary>A model name as a file name: letters, digits, '.', '_' and '-' kept, anything else a '-'.</summary>
    private static string SafeName(string name)
    {
        var safe = new string([.. name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-')]).Trim('.', '-');
        return safe.Length == 0 ? "model" : safe[..Math.Min(safe.Length, 60)];
    }

    public void Dispose() => http.Dispose();
}
