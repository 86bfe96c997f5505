// The built-in engine on a device: generates a pipeline in Stable Diffusion 1.5's shapes (random fp16 weights), then
// measures the model load, UNet steps per second at 512×512 with guidance (batch 1 and 4) as bare ONNX Runtime calls with
// every input already on the device, the same steps through the pipeline (its overhead over the bare calls), end-to-end
// txt2img, and device memory. Writes figures.md (a section for docs/benchmarks.md) and costs.json (the load and job
// times, for the hot-model scheduling simulation of bench/jobs) to --out. bench/gpu/run.sh runs it on a GPU machine;
// with --device cpu and a small --width it runs anywhere (how it is checked without a GPU).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

var device = EngineDevice.Parse(Arg("--device", "cuda")) ?? throw new ArgumentException($"--device must be {EngineDevice.Syntax}");
var width = int.Parse(Arg("--width", "320"), CultureInfo.InvariantCulture);
var steps = int.Parse(Arg("--steps", "20"), CultureInfo.InvariantCulture);
var size = int.Parse(Arg("--size", "512"), CultureInfo.InvariantCulture);
var fp16 = !args.Contains("--fp32");
var output = Arg("--out", ".");
var models = Arg("--models", Path.Combine(Path.GetTempPath(), "atelier-bench-gpu"));
Directory.CreateDirectory(output);

StartedDevice started;
try
{
    started = ExecutionProviders.Start(new DeviceSettings { Device = device });
}
catch (DeviceUnavailableException e)
{
    Console.Error.WriteLine($"the device cannot run: {e.Message}");
    return 3;
}

var settings = started.Settings;
Console.WriteLine($"device {settings.Device} ({started.Provider}); {Gpu()}");
if (args.Contains("--parity"))
{
    // The features' check instead of the figures: bench/gpu/run.sh passes --parity on through ATELIER_GPU_ARGS.
    return Parity.Run(settings, output, models, int.Parse(Arg("--tolerance", "3"), CultureInfo.InvariantCulture));
}


var folder = Path.Combine(models, $"sd-shaped-{width}-{(fp16 ? "fp16" : "fp32")}");
var watch = Stopwatch.StartNew();
if (!File.Exists(Path.Combine(folder, "model_index.json")))
{
    SdShapedPipeline.Write(folder, width == 320 ? new SdShapedOptions(Fp16: fp16)
        : new SdShapedOptions(BaseChannels: width, ContextWidth: Math.Max(64, width * 768 / 320 / 64 * 64), TextLayers: 2, VocabSize: 1000, VaeChannels: Math.Max(32, width * 128 / 320 / 32 * 32), Fp16: fp16));
}

var generated = watch.Elapsed;
long Bytes(string component) => new FileInfo(Path.Combine(folder, component, "model.onnx")).Length;
Console.WriteLine($"model written in {generated.TotalSeconds:F1} s: unet {Bytes("unet") >> 20} MiB, text encoder {Bytes("text_encoder") >> 20} MiB, vae decoder {Bytes("vae_decoder") >> 20} MiB");
var memoryBefore = DeviceMemoryUsedMiB();

// The model load, as a worker does it on a model switch (the files are in the page cache: they were just written).
watch.Restart();
var pipeline = DiffusionPipeline.Load(folder, "sd-shaped", "0000000000", settings with { LatentsOnDevice = true }); // CUDA's default; forced on the CPU for the check
var loadMs = watch.Elapsed.TotalMilliseconds;
Console.WriteLine($"load {loadMs:F0} ms ({pipeline.ExecutionProvider}, {pipeline.Precision})");

// Bare ONNX Runtime: the UNet alone, inputs bound once on the device, the output left there. The ceiling.
var latent = size / 8;
var bare = new Dictionary<int, double>();
using (var options = ExecutionProviders.SessionOptionsFor(settings))
using (var unet = new InferenceSession(Path.Combine(folder, "unet", "model.onnx"), options))
{
    var hidden = unet.InputMetadata["encoder_hidden_states"].Dimensions[^1];
    var where = settings.Device.IsCuda ? new OrtMemoryInfo("Cuda", OrtAllocatorType.DeviceAllocator, settings.Device.Ordinal, OrtMemType.Default) : OrtMemoryInfo.DefaultInstance;
    foreach (var batch in new[] { 2, 8 })
    {
        var type = unet.InputMetadata["sample"].ElementDataType;
        using var sample = Tensor(type, [batch, 4, latent, latent]);
        using var states = Tensor(type, [batch, 77, hidden]);
        using var timestep = OrtValue.CreateTensorValueFromMemory(new float[] { 500 }, [1]);
        using var binding = unet.CreateIoBinding();
        binding.BindInput("sample", sample);
        binding.BindInput("timestep", timestep);
        binding.BindInput("encoder_hidden_states", states);
        binding.BindOutputToDevice("out_sample", where);
        using var run = new RunOptions();
        var times = new List<double>();
        for (var i = 0; i < 13; i++)
        {
            var t = Stopwatch.GetTimestamp();
            unet.RunWithBinding(run, binding);
            binding.SynchronizeBoundOutputs();
            if (i >= 3)
            {
                times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            }
        }

        bare[batch] = Median(times);
        Console.WriteLine($"bare UNet, batch {batch} ({batch / 2} image(s) with guidance): {bare[batch]:F2} ms per step, {1000 / bare[batch]:F2} steps/s");
    }
}

// Through the pipeline: the same steps with the sampler, guidance and the update in between (on the device: Euler has
// a linear plan), then the VAE and the PNG.
var request = new GenerationRequest { Prompt = "a white lighthouse at dusk", Steps = steps, Width = size, Height = size, Seed = 7, Sampler = "Euler", CfgScale = 7 };
var (pipelineStep, jobMs) = StepMs(pipeline);
var overhead = (pipelineStep - bare[2]) / bare[2] * 100;
Console.WriteLine($"txt2img {size}×{size}, {steps} steps, Euler, CFG 7: {jobMs:F0} ms end to end; {pipelineStep:F2} ms per step ({overhead:F1}% over bare); latents on the device: {pipeline.LatentsOnDevice}, {pipeline.LatentReadbacks} readbacks");
watch.Restart();
pipeline.Generate(request with { BatchSize = 4 }, null, CancellationToken.None);
var batchMs = watch.Elapsed.TotalMilliseconds;
Console.WriteLine($"txt2img batch 4: {batchMs:F0} ms ({batchMs / 4:F0} ms per image)");
var memoryAfter = DeviceMemoryUsedMiB();
pipeline.Dispose();

// The same pipeline with the sampler's arithmetic on the host: the latents cross the bus twice a step.
double hostStep;
using (var hostLoop = DiffusionPipeline.Load(folder, "sd-shaped", "0000000000", settings with { LatentsOnDevice = false }))
{
    (hostStep, _) = StepMs(hostLoop);
}

var hostOverhead = (hostStep - bare[2]) / bare[2] * 100;
Console.WriteLine($"the host loop: {hostStep:F2} ms per step ({hostOverhead:F1}% over bare)");

var gpu = Gpu();
var md = $"""
    ### The built-in engine on {(settings.Device.IsCuda ? gpu : "the CPU")} ({DateTime.UtcNow:yyyy-MM-dd})

    `{string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}` (bench/Atelier.Bench.Gpu, run by `bash bench/gpu/run.sh` on the device machine).
    Model: random weights in SD 1.5's shapes ({(fp16 ? "fp16" : "fp32")}, base width {width}): UNet {Bytes("unet") >> 20} MiB, text encoder {Bytes("text_encoder") >> 20} MiB,
    VAE decoder {Bytes("vae_decoder") >> 20} MiB, generated on the machine in {generated.TotalSeconds:F0} s. {settings.Device} ({started.Provider}){(settings.Device.IsCuda
        ? ", ONNX Runtime's CUDA arena growing by `kSameAsRequested`, cuDNN's heuristic algorithm search" : "")}.

    | figure | value |
    | --- | --- |
    | model load (3 sessions onto the device) | {loadMs:F0} ms |
    | UNet, bare ONNX Runtime, batch 1 with guidance ({size}×{size}) | {bare[2]:F2} ms per step, {1000 / bare[2]:F2} steps/s |
    | UNet, bare ONNX Runtime, batch 4 with guidance | {bare[8]:F2} ms per step, {1000 / bare[8]:F2} steps/s ({4000 / bare[8]:F2} image-steps/s) |
    | UNet step through the pipeline, batch 1, latents on the device | {pipelineStep:F2} ms (overhead over bare: {overhead:F1}%) |
    | UNet step through the pipeline, batch 1, sampler on the host (latents copied each step) | {hostStep:F2} ms (overhead over bare: {hostOverhead:F1}%) |
    | txt2img end to end, {steps} steps, batch 1 | {jobMs:F0} ms |
    | txt2img end to end, {steps} steps, batch 4 (images one after another) | {batchMs:F0} ms |
    | device memory used (nvidia-smi, before load → after the runs) | {Mib(memoryBefore)} → {Mib(memoryAfter)} |

    """;
File.WriteAllText(Path.Combine(output, "figures.md"), md);
File.WriteAllText(Path.Combine(output, "costs.json"), JsonSerializer.Serialize(new
{
    gpu = settings.Device.IsCuda ? gpu : "cpu",
    device = settings.Device.ToString(),
    loadMs = Math.Round(loadMs),
    jobMs = Math.Round(jobMs),
    steps,
    size,
    measured = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
}));
Console.WriteLine(md);
return 0;

// The median time between progress events over a generation (after a short warm-up), and the generation's time.
(double StepMs, double JobMs) StepMs(DiffusionPipeline p)
{
    p.Generate(request with { Steps = 2 }, null, CancellationToken.None);
    var times = new List<double>();
    var last = 0L;
    var job = Stopwatch.StartNew();
    p.Generate(request, _ =>
    {
        var now = Stopwatch.GetTimestamp();
        if (last != 0)
        {
            times.Add(Stopwatch.GetElapsedTime(last, now).TotalMilliseconds);
        }

        last = now;
    }, CancellationToken.None);
    return (Median(times), job.Elapsed.TotalMilliseconds);
}

string Arg(string name, string fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

static double Median(List<double> values) => values.Count == 0 ? double.NaN : values.Order().ElementAt(values.Count / 2);

static string Mib(long? value) => value is { } v ? $"{v} MiB" : "n/a (no nvidia-smi)";

static OrtValue Tensor(TensorElementType type, long[] shape)
{
    var count = (int)shape.Aggregate(1L, (a, d) => a * d);
    var random = new Random(1);
    if (type == TensorElementType.Float16)
    {
        var half = new Float16[count];
        for (var i = 0; i < count; i++)
        {
            half[i] = (Float16)(float)((random.NextDouble() * 2) - 1);
        }

        return OrtValue.CreateTensorValueFromMemory(half, shape);
    }

    return OrtValue.CreateTensorValueFromMemory([.. Enumerable.Range(0, count).Select(_ => (float)((random.NextDouble() * 2) - 1))], shape);
}

static string Gpu() => Smi("--query-gpu=name,driver_version,memory.total", "--format=csv,noheader") ?? "no NVIDIA GPU seen (nvidia-smi)";

static long? DeviceMemoryUsedMiB() =>
    Smi("--query-gpu=memory.used", "--format=csv,noheader,nounits") is { } used && long.TryParse(used.Split('\n')[0].Trim(), CultureInfo.InvariantCulture, out var v) ? v : null;

static string? Smi(params string[] arguments)
{
    try
    {
        var start = new ProcessStartInfo("nvidia-smi") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var text = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        return process.ExitCode == 0 && text.Length > 0 ? text : null;
    }
    catch (System.ComponentModel.Win32Exception)
    {
        return null;
    }
}
