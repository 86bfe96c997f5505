namespace Atelier.Worker.A1111;

/// <summary>Configuration of <c>atelier engine</c> (section <c>Atelier:Engine</c>).</summary>
public sealed class EngineOptions
{
    public const string SectionName = "Atelier:Engine";
    public string Urls { get; set; } = "http://127.0.0.1:7860";
    /// <summary>Folder of diffusers ONNX model folders; the demo model is built here when it holds none.</summary>
    public string ModelsDirectory { get; set; } = "data/models";
    /// <summary>The most that loaded models take (RAM on the CPU, device memory on CUDA); least recently used models go first.</summary>
    public long MemoryBudgetBytes { get; set; } = 8L * 1024 * 1024 * 1024;
    /// <summary>Where the engine runs: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c> (CUDA needs the GPU build).</summary>
    public string Device { get; set; } = "cpu";
    /// <summary>When CUDA cannot start, run on the CPU with a warning instead of refusing to start.</summary>
    public bool DeviceFallback { get; set; }
    /// <summary>The most device memory ONNX Runtime's CUDA arena takes per model session; 0: no limit.</summary>
    public long CudaMemoryLimitBytes { get; set; }

    /// <summary>The device settings these options give; a <see cref="Device"/> that is not one is an <see cref="Engine.Pipeline.DeviceUnavailableException"/>.</summary>
    public Engine.Pipeline.DeviceSettings DeviceSettings() => new()
    {
        Device = Engine.Pipeline.EngineDevice.Parse(Device)
                 ?? throw new Engine.Pipeline.DeviceUnavailableException($"{SectionName}:Device must be {Engine.Pipeline.EngineDevice.Syntax}, not '{Device}'"),
        FallBackToCpu = DeviceFallback,
        CudaMemoryLimitBytes = CudaMemoryLimitBytes,
    };
}
