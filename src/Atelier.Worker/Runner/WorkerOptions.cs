using Atelier.Engine.Pipeline;

namespace Atelier.Worker.Runner;

/// <summary>What <c>atelier worker</c> is told on its command line.</summary>
public sealed record WorkerOptions
{
    public required Uri Server { get; init; }
    public required string Token { get; init; }
    /// <summary><c>builtin</c>, <c>a1111=URL</c>, <c>comfyui=URL</c>, or <c>noop[=milliseconds]</c>.</summary>
    public string Engine { get; init; } = "builtin";
    public int Slots { get; init; } = 1;
    public string Id { get; init; } = DefaultId();
    public string ModelsDirectory { get; init; } = Path.Combine("data", "models");
    /// <summary>Where fetched model files are kept (<c>--model-cache</c>): a folder this worker process has to itself.</summary>
    public string ModelCacheDirectory { get; init; } = Path.Combine("data", "model-cache");
    /// <summary>The most bytes the model cache keeps (<c>--model-cache-bytes</c>); 0 turns model delivery off.</summary>
    public long ModelCacheBytes { get; init; } = DefaultModelCacheBytes;
    /// <summary>The AUTOMATIC1111 server's checkpoint folder (<c>--a1111-models</c>): fetched models are copied there.</summary>
    public string? A1111ModelsDirectory { get; init; }
    /// <summary>The built-in engine's device (<c>--device</c>): <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>When CUDA cannot start, run on the CPU with a warning (<c>--device-fallback</c>) rather than stop.</summary>
    public bool DeviceFallback { get; init; }
    /// <summary>The built-in engine's model memory budget (<c>--memory-budget</c>): RAM on the CPU, device memory on CUDA.</summary>
    public long MemoryBudgetBytes { get; init; } = 8L << 30;
    /// <summary>The most CUDA memory ONNX Runtime's arena takes per session (<c>--cuda-memory-limit</c>); 0: no limit.</summary>
    public long CudaMemoryLimitBytes { get; init; }
    /// <summary>How long one lease request waits on the server for a job.</summary>
    public int WaitSeconds { get; init; } = 20;
    /// <summary>The process that started this worker (the server's local worker): when it is gone, the worker stops.</summary>
    public int? ParentPid { get; init; }
    /// <summary>A loopback port on which <c>GET /healthz</c> answers 200 once the worker has registered (503 before): a runtime backend's readiness check.</summary>
    public int? HealthPort { get; init; }

    public const long DefaultModelCacheBytes = 20L << 30;

    /// <summary>
    /// The device settings these options give the built-in engine. On the CPU, slots share the cores: with more than one
    /// slot each session gets its share of intra-op threads (at least one), where ONNX Runtime would give every session
    /// a thread per core, and the slots' threads would spin-wait against each other (on 2 cores with 8 slots that cost
    /// about 40% of the CPU a job takes: docs/benchmarks.md, hot-model scheduling). The share holds when only one slot is
    /// busy too: a worker of N slots on a CPU runs a lone job on cores ÷ N threads.
    /// </summary>
    public DeviceSettings DeviceSettings()
    {
        var device = EngineDevice.Parse(Device) ?? throw new ArgumentException($"--device must be {EngineDevice.Syntax}, not '{Device}'");
        return new()
        {
            Device = device,
            FallBackToCpu = DeviceFallback,
            CudaMemoryLimitBytes = CudaMemoryLimitBytes,
            // On CUDA too: a session's CPU ops share the cores as well, and a CUDA device that falls back runs on the CPU.
            Threads = CpuThreadsPerSlot(Slots, Environment.ProcessorCount),
        };
    }

    /// <summary>Intra-op threads for each of <paramref name="slots"/> slots sharing <paramref name="cores"/> cores; 0 (ONNX Runtime's default, a thread per core) for one slot or none.</summary>
    public static int CpuThreadsPerSlot(int slots, int cores) => slots > 1 ? Math.Max(1, cores / slots) : 0;

    public static string DefaultId() =>
        new string([.. $"{Environment.MachineName}-worker".ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c == '-' ? c : '-')]);
}
