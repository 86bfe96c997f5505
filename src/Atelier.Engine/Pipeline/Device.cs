using System.Globalization;
using Atelier.Engine.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Atelier.Engine.Pipeline;

/// <summary>Where the built-in engine runs: the CPU, or one CUDA device by its ordinal (<c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>).</summary>
public readonly record struct EngineDevice(bool IsCuda, int Ordinal)
{
    public static readonly EngineDevice Cpu = new(false, 0);

    /// <summary><c>cpu</c>, <c>cuda</c> (device 0) or <c>cuda:N</c> (N from 0 to 63); null for anything else.</summary>
    public static EngineDevice? Parse(string? text)
    {
        var t = text?.Trim().ToLowerInvariant();
        if (t == "cpu")
        {
            return Cpu;
        }

        if (t == "cuda")
        {
            return new EngineDevice(true, 0);
        }

        return t is not null && t.StartsWith("cuda:", StringComparison.Ordinal)
               && int.TryParse(t.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 0 and < 64
            ? new EngineDevice(true, n)
            : null;
    }

    public const string Syntax = "cpu, cuda or cuda:N";

    public override string ToString() => IsCuda ? $"cuda:{Ordinal.ToString(CultureInfo.InvariantCulture)}" : "cpu";
}

/// <summary>How the engine's ONNX sessions are made: the device, whether a missing CUDA may fall back to the CPU, CUDA's arena.</summary>
public sealed record DeviceSettings
{
    public EngineDevice Device { get; init; } = EngineDevice.Cpu;

    /// <summary>When CUDA cannot start, run on the CPU with a warning instead of refusing to start.</summary>
    public bool FallBackToCpu { get; init; }

    /// <summary>The most CUDA memory ONNX Runtime's arena takes per session (<c>gpu_mem_limit</c>); 0 leaves ONNX Runtime's default (no limit).</summary>
    public long CudaMemoryLimitBytes { get; init; }

    /// <summary>
    /// Whether the UNet's inputs are bound with <see cref="OrtIoBinding"/> so that the text conditioning stays on the device
    /// across steps; null (the default) binds on CUDA only, where it saves a copy per step (on the CPU it saves nothing).
    /// </summary>
    public bool? IoBinding { get; init; }

    /// <summary>
    /// Whether samplers with a linear plan (all but LMS, PLMS and DPM++ 3M SDE) keep the latents on the
    /// device between steps, the guidance and the update done there by small graphs; null (the default) does it on
    /// CUDA only. On the CPU it changes nothing but the order of float operations, which tests use to check it.
    /// </summary>
    public bool? LatentsOnDevice { get; init; }

    /// <summary>Intra-op threads on the CPU; 0 is ONNX Runtime's default (one per core).</summary>
    public int Threads { get; init; }

    public static readonly DeviceSettings Default = new();
}

/// <summary>The device could not be started and falling back to the CPU was not asked for.</summary>
public sealed class DeviceUnavailableException(string message) : Exception(message);

/// <summary>What <see cref="ExecutionProviders.Start"/> found: the device that really runs, its provider, and a warning when it fell back.</summary>
public sealed record StartedDevice(DeviceSettings Settings, string Provider, string? Warning)
{
    public EngineDevice Device => Settings.Device;
    public static readonly StartedDevice Cpu = new(DeviceSettings.Default, "CPUExecutionProvider", null);
}

/// <summary>ONNX Runtime's execution providers in this build, and the session options for a device.</summary>
public static class ExecutionProviders
{
    public const string CudaProvider = "CUDAExecutionProvider";
    public const string CpuProvider = "CPUExecutionProvider";

    /// <summary>The command that builds the GPU flavour, for messages.</summary>
    public const string GpuBuildCommand = "dotnet publish src/Atelier -c Release -p:AtelierGpu=cuda -o out/atelier-cuda";

    /// <summary>The providers compiled into the ONNX Runtime this process loaded (the CPU package has only the CPU one).</summary>
    public static IReadOnlyList<string> Available => OrtEnv.Instance().GetAvailableProviders();

    /// <summary>Whether this build carries the CUDA provider (built with <c>-p:AtelierGpu=cuda</c>).</summary>
    public static bool CudaBuilt => Available.Contains(CudaProvider);

    /// <summary>
    /// Starts the device the settings name, before any model is loaded, so that a worker says at once what really runs:
    /// for CUDA, the build must carry the provider and a one-node model must run on the device. When either fails, the
    /// settings' <see cref="DeviceSettings.FallBackToCpu"/> decides between the CPU with a warning and
    /// <see cref="DeviceUnavailableException"/>.
    /// </summary>
    public static StartedDevice Start(DeviceSettings settings)
    {
        if (!settings.Device.IsCuda)
        {
            return new StartedDevice(settings, CpuProvider, null);
        }

        string problem;
        if (!CudaBuilt)
        {
            problem = $"--device {settings.Device} needs the GPU build of atelier, and this is the CPU build (its ONNX Runtime has only " +
                      $"{string.Join(", ", Available)}). Build the GPU one with: {GpuBuildCommand} (README, \"GPU workers\")";
        }
        else
        {
            try
            {
                Probe(settings);
                return new StartedDevice(settings, CudaProvider, null);
            }
            catch (DeviceUnavailableException e)
            {
                problem = e.Message;
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
            {
                problem = $"CUDA device {settings.Device.Ordinal} could not be started: {e.Message.Trim()} " +
                          "(it needs an NVIDIA driver, CUDA 13 and cuDNN 9 libraries on the library path)";
            }
        }

        if (!settings.FallBackToCpu)
        {
            throw new DeviceUnavailableException(problem + ". Or let it run on the CPU with --device-fallback.");
        }

        return new StartedDevice(settings with { Device = EngineDevice.Cpu }, CpuProvider, problem + "; running on the CPU instead (--device-fallback)");
    }

    /// <summary>Session options for <paramref name="settings"/>: graph optimizations on, and the CUDA provider with its arena settings on CUDA.</summary>
    public static SessionOptions SessionOptionsFor(DeviceSettings settings)
    {
        var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        try
        {
            if (settings.Threads > 0)
            {
                options.IntraOpNumThreads = settings.Threads;
            }

            if (settings.Device.IsCuda)
            {
                using var cuda = new OrtCUDAProviderOptions();
                var values = new Dictionary<string, string>
                {
                    ["device_id"] = settings.Device.Ordinal.ToString(CultureInfo.InvariantCulture),
                    // Grow the arena by what is asked, not by powers of two: a UNet's activations would otherwise double it.
                    ["arena_extend_strategy"] = "kSameAsRequested",
                    // The heuristic picks convolution algorithms at once; an exhaustive search costs seconds per new shape.
                    ["cudnn_conv_algo_search"] = "HEURISTIC",
                    ["do_copy_in_default_stream"] = "1",
                };
                if (settings.CudaMemoryLimitBytes > 0)
                {
                    values["gpu_mem_limit"] = settings.CudaMemoryLimitBytes.ToString(CultureInfo.InvariantCulture);
                }

                cuda.UpdateOptions(values);
                options.AppendExecutionProvider_CUDA(cuda);
            }

            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    /// <summary>Runs y = x + 1 on the device: loads the provider and its libraries and touches the device.</summary>
    private static void Probe(DeviceSettings settings)
    {
        var model = new OnnxGraph()
            .Input("x", OnnxGraph.ElementFloat, 1)
            .Constant("one", [1f], 1)
            .Node("Add", ["x", "one"], ["y"])
            .Output("y", OnnxGraph.ElementFloat, 1)
            .ToModel("probe");
        using var options = SessionOptionsFor(settings);
        using var session = new InferenceSession(model, options);
        using var x = OrtValue.CreateTensorValueFromMemory(new float[] { 1 }, [1]);
        using var run = new RunOptions();
        using var y = session.Run(run, ["x"], [x], ["y"]);
        if (y[0].GetTensorDataAsSpan<float>()[0] != 2f)
        {
            throw new DeviceUnavailableException($"CUDA device {settings.Device.Ordinal} gave a wrong answer to a one-node model");
        }
    }

    /// <summary>Reads a float or float16 tensor as floats.</summary>
    internal static float[] ReadFloats(OrtValue value)
    {
        var type = value.GetTensorTypeAndShape().ElementDataType;
        if (type == TensorElementType.Float16)
        {
            var half = value.GetTensorDataAsSpan<Float16>();
            var result = new float[half.Length];
            for (var i = 0; i < half.Length; i++)
            {
                result[i] = (float)half[i];
            }

            return result;
        }

        return value.GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>A tensor of <paramref name="type"/> (float or float16) holding <paramref name="data"/>.</summary>
    internal static OrtValue FloatTensor(float[] data, long[] shape, TensorElementType type)
    {
        if (type != TensorElementType.Float16)
        {
            return OrtValue.CreateTensorValueFromMemory(data, shape);
        }

        var half = new Float16[data.Length];
        for (var i = 0; i < data.Length; i++)
        {
            half[i] = (Float16)data[i];
        }

        return OrtValue.CreateTensorValueFromMemory(half, shape);
    }
}
