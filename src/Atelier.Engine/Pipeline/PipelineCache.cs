using System.Diagnostics;

namespace Atelier.Engine.Pipeline;

/// <summary>A model folder the engine can load: its name (folder name), AUTOMATIC1111-style short hash and full SHA-256.</summary>
public sealed record ModelEntry(string Name, string Folder, string Sha256)
{
    public string ShortHash => Sha256[..10];
    public string Title => $"{Name} [{ShortHash}]";

    /// <summary>True when <paramref name="reference"/> names this model the ways A1111 accepts: title, name, short or full hash.</summary>
    public bool Matches(string reference) =>
        string.Equals(reference, Title, StringComparison.OrdinalIgnoreCase) || string.Equals(reference, Name, StringComparison.OrdinalIgnoreCase)
        || string.Equals(reference, ShortHash, StringComparison.OrdinalIgnoreCase) || string.Equals(reference, Sha256, StringComparison.OrdinalIgnoreCase)
        || (reference.Length == 8 && Sha256.StartsWith(reference, StringComparison.OrdinalIgnoreCase));

    /// <summary>The diffusers ONNX folders under <paramref name="root"/> (each has a model_index.json), hashed by their UNet file.</summary>
    public static IReadOnlyList<ModelEntry> Scan(string root)
    {
        if (!Directory.Exists(root))
        {
            return [];
        }

        var entries = new List<ModelEntry>();
        foreach (var dir in Directory.GetDirectories(root).Order(StringComparer.Ordinal))
        {
            var unet = Path.Combine(dir, "unet", "model.onnx");
            if (File.Exists(Path.Combine(dir, "model_index.json")) && File.Exists(unet))
            {
                entries.Add(new ModelEntry(Path.GetFileName(dir), dir, HashOf(unet)));
            }
        }

        return entries;
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Path, long Length, DateTime Written), string> Hashes = new();

    /// <summary>
    /// The SHA-256 of a file (a UNet; a LoRA, embedding or VAE for the infotext), computed once per file version (path,
    /// size, write time): a real UNet is gigabytes, and every scan (each job of the built-in adapter, each refresh) or
    /// every image's infotext would otherwise read it all again.
    /// </summary>
    internal static string HashOf(string path)
    {
        var info = new FileInfo(path);
        return Hashes.GetOrAdd((info.FullName, info.Length, info.LastWriteTimeUtc), key =>
        {
            using var stream = File.OpenRead(key.Path);
            return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
        });
    }
}

/// <summary>
/// A pipeline handed out by <see cref="PipelineCache.Rent"/>: while the lease is held, neither an eviction nor the
/// cache's disposal frees the pipeline's native sessions (they are freed when the last lease ends).
/// </summary>
public sealed class PipelineLease : IDisposable
{
    private int _ended;

    internal PipelineLease(DiffusionPipeline pipeline) => Pipeline = pipeline;

    public DiffusionPipeline Pipeline { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _ended, 1) == 0)
        {
            Pipeline.Exit();
        }
    }
}

/// <summary>
/// Loaded pipelines, kept up to a memory budget and evicted least recently used first. A model is counted by its files'
/// sizes (its weights): against RAM on the CPU, and against device memory on CUDA, where the weights live and where the
/// budget should leave room for the activations (a few GiB for SD 1.5 at 512×512). One session per model on the device. Each load is timed: the last one is reported, since a model switch is the most expensive thing a
/// worker does. An evicted pipeline that a lease still holds is freed when that lease ends.
/// </summary>
public sealed class PipelineCache(long budgetBytes, DeviceSettings? device = null) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly LinkedList<(ModelEntry Model, string Loras, DiffusionPipeline Pipeline, long Bytes)> _loaded = new();
    private bool _disposed;

    /// <summary>The device the pipelines are loaded on.</summary>
    public EngineDevice Device => (device ?? DeviceSettings.Default).Device;

    public TimeSpan LastLoadTime { get; private set; }
    public int Loads { get; private set; }

    public IReadOnlyList<string> LoadedNames
    {
        get
        {
            lock (_gate)
            {
                return [.. _loaded.Select(l => l.Model.Name)];
            }
        }
    }

    /// <summary>
    /// The pipeline for <paramref name="model"/> with <paramref name="loras"/> merged in (none: the model as it is),
    /// loaded when it is not yet, leased until the lease is disposed. Each set of LoRAs at its multipliers is a
    /// pipeline of its own, counted against the budget like a model.
    /// </summary>
    public PipelineLease Rent(ModelEntry model, IReadOnlyList<Lora.LoraUse>? loras = null)
    {
        var set = loras is { Count: > 0 } ? string.Join("|", loras.Select(l => FormattableString.Invariant($"{l.Path}:{l.TextWeight}:{l.UnetWeight}"))) : "";
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var pipeline = Find(model, set) ?? Load(model, set, loras);
            // Under the gate, and only the gate retires cached pipelines: a pipeline found here is never retired yet.
            ObjectDisposedException.ThrowIf(!pipeline.TryEnter(), pipeline);

            return new PipelineLease(pipeline);
        }
    }

    private DiffusionPipeline? Find(ModelEntry model, string loras)
    {
        for (var node = _loaded.First; node is not null; node = node.Next)
        {
            if (node.Value.Model.Folder == model.Folder && node.Value.Loras == loras)
            {
                _loaded.Remove(node);
                _loaded.AddFirst(node);
                return node.Value.Pipeline;
            }
        }

        return null;
    }

    private DiffusionPipeline Load(ModelEntry model, string set, IReadOnlyList<Lora.LoraUse>? loras)
    {
        var bytes = Directory.EnumerateFiles(model.Folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        while (_loaded.Count > 0 && _loaded.Sum(l => l.Bytes) + bytes > budgetBytes)
        {
            _loaded.Last!.Value.Pipeline.Dispose();
            _loaded.RemoveLast();
        }

        var watch = Stopwatch.StartNew();
        var pipeline = DiffusionPipeline.Load(model.Folder, model.Name, model.ShortHash, device, loras);
        LastLoadTime = watch.Elapsed;
        Loads++;
        _loaded.AddFirst((model, set, pipeline, bytes));
        return pipeline;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var l in _loaded)
            {
                l.Pipeline.Dispose();
            }

            _loaded.Clear();
        }
    }
}
