using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using Atelier.Worker.A1111;
using Atelier.Worker.Adapters;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.ML.OnnxRuntime;

// Engine benchmark: pipeline overhead per denoising step over the bare ONNX Runtime UNet calls (heavy tiny model,
// 512×512, guidance), managed bytes allocated per step at two image sizes, and a whole txt2img request through
// `atelier engine` (HTTP on loopback) against the engine called in process. Writes its section of docs/benchmarks.md.
// Usage: dotnet run -c Release --project bench/Atelier.Bench [steps]
var steps = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 30;
var root = FindRoot();
var work = Directory.CreateTempSubdirectory("atelier-bench-").FullName;
try
{
    var heavy = Path.Combine(work, "heavy");
    TinyPipeline.Write(heavy, new TinyPipelineOptions(Heavy: true));
    using var pipeline = DiffusionPipeline.Load(heavy, "heavy", "0000000000", new DeviceSettings { Threads = 1 });

    // 1. Bare: the UNet alone, batch 2 (guidance), 64×64 latents, inputs prepared once.
    using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 1 };
    using var unet = new InferenceSession(Path.Combine(heavy, "unet", "model.onnx"), options);
    var sample = new float[2 * 4 * 64 * 64];
    var states = new float[2 * 77 * 8];
    var output = new float[sample.Length];
    using var sampleValue = OrtValue.CreateTensorValueFromMemory(sample, [2, 4, 64, 64]);
    using var statesValue = OrtValue.CreateTensorValueFromMemory(states, [2, 77, 8]);
    using var timestep = OrtValue.CreateTensorValueFromMemory(new[] { 500f }, [1]);
    using var outputValue = OrtValue.CreateTensorValueFromMemory(output, [2, 4, 64, 64]);
    using var runOptions = new RunOptions();
    void Bare() => unet.Run(runOptions, ["sample", "timestep", "encoder_hidden_states"], [sampleValue, timestep, statesValue], ["out_sample"], [outputValue]);
    for (var i = 0; i < 5; i++)
    {
        Bare();
    }

    // 2. The pipeline, timed between its own step events (text encoding and decoding excluded), alternated with bare runs.
    double bareMs = 0, pipeMs = 0;
    for (var round = 0; round < 3; round++)
    {
        var w = Stopwatch.StartNew();
        for (var i = 0; i < steps; i++)
        {
            Bare();
        }

        bareMs += w.Elapsed.TotalMilliseconds / steps;
        var stamps = new List<double>();
        var clock = Stopwatch.StartNew();
        pipeline.Generate(new GenerationRequest { Prompt = "a red fox", Steps = steps + 1, Width = 512, Height = 512, Seed = round, Sampler = "Euler", CfgScale = 7 },
            _ => stamps.Add(clock.Elapsed.TotalMilliseconds), CancellationToken.None);
        pipeMs += (stamps[^1] - stamps[0]) / (stamps.Count - 1);
    }

    bareMs /= 3;
    pipeMs /= 3;
    var overhead = 100 * (pipeMs - bareMs) / bareMs;

    // 3. Managed allocations per step at two sizes (the sampler runs on this thread, between step events).
    long PerStep(int size)
    {
        var marks = new List<long>();
        pipeline.Generate(new GenerationRequest { Prompt = "x", Steps = 12, Width = size, Height = size, Seed = 1, Sampler = "Euler", CfgScale = 7 },
            _ => marks.Add(GC.GetAllocatedBytesForCurrentThread()), CancellationToken.None);
        return (marks[^1] - marks[1]) / (marks.Count - 2);
    }

    PerStep(256);
    var alloc256 = PerStep(256);
    var alloc512 = PerStep(512);

    // 4. A whole request through `atelier engine` (HTTP, loopback) against the engine in process, demo model, 64×64, 8 steps.
    var models = Path.Combine(work, "models");
    var app = EngineServer.Build(["--Atelier:Engine:Urls=http://127.0.0.1:0", $"--Atelier:Engine:ModelsDirectory={models}", "--Logging:LogLevel:Default=Warning"]);
    await app.StartAsync();
    var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    using var http = new HttpClient { BaseAddress = new Uri(address) };
    using var builtin = new BuiltinAdapter(models);
    var job = new EngineJob { Model = "atelier-demo", Prompt = "a red fox", Steps = 8, Width = 64, Height = 64, Seed = 1 };
    var body = new { prompt = "a red fox", steps = 8, width = 64, height = 64, seed = 1, sampler_name = "Euler" };
    const int requests = 40;
    for (var i = 0; i < 5; i++)
    {
        await builtin.GenerateAsync(job, null, CancellationToken.None);
        (await http.PostAsJsonAsync("/sdapi/v1/txt2img", body)).EnsureSuccessStatusCode();
    }

    double httpMs = 0, inProcMs = 0;
    for (var round = 0; round < 2; round++)
    {
        var w = Stopwatch.StartNew();
        for (var i = 0; i < requests; i++)
        {
            await builtin.GenerateAsync(job, null, CancellationToken.None);
        }

        inProcMs += w.Elapsed.TotalMilliseconds / requests;
        w.Restart();
        for (var i = 0; i < requests; i++)
        {
            using var r = await http.PostAsJsonAsync("/sdapi/v1/txt2img", body);
            r.EnsureSuccessStatusCode();
            await r.Content.ReadAsByteArrayAsync();
        }

        httpMs += w.Elapsed.TotalMilliseconds / requests;
    }

    inProcMs /= 2;
    httpMs /= 2;
    await app.StopAsync();

    string F(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
    var verdict = overhead <= 3 ? "met" : "missed";
    var growth = alloc512 <= alloc256 * 1.05 + 512 ? "does not grow" : "grows";
    Console.WriteLine($"bare {F(bareMs)} ms/step, pipeline {F(pipeMs)} ms/step, overhead {F(overhead)}%; alloc/step {alloc256} B @256, {alloc512} B @512; request in-process {F(inProcMs)} ms, HTTP {F(httpMs)} ms");
    var section = $"""
        <!-- engine:begin -->
        ## Engine: pipeline overhead, allocations, HTTP

        Measured {DateTime.UtcNow:yyyy-MM-dd} on {Environment.ProcessorCount} cores, .NET {Environment.Version}, ONNX Runtime CPU, one intra-op thread, with
        `dotnet run -c Release --project bench/Atelier.Bench {steps}`; the heavy tiny model (three 3×3 convolutions in its UNet), 512×512, guidance 7 (batch 2 per UNet call).
        Bare and pipeline runs alternate, three rounds; the pipeline is timed between its own step events, so text encoding and decoding are left out.
        On this shared 2-core machine run-to-run noise is a few percent either way, so the overhead reads as "within noise" when it is near 0;
        before the UNet's tensors were bound once per request (they were wrapped anew each step), an 11 ms/step UNet showed about 0.65 ms of fixed cost per step.

        | measure | value |
        |---|---:|
        | bare ONNX Runtime UNet call (inputs prepared once) | {F(bareMs)} ms/step |
        | pipeline step (input scaling, UNet call, guidance, Euler update, progress) | {F(pipeMs)} ms/step |
        | **pipeline overhead per step** | **{F(overhead)}%** (target ≤ 3%: **{verdict}**) |
        | managed bytes allocated per step, 256×256 | {alloc256} B |
        | managed bytes allocated per step, 512×512 | {alloc512} B ({growth} with image size) |
        | txt2img in process (built-in adapter; demo model, 64×64, 8 steps) | {F(inProcMs)} ms |
        | the same through `atelier engine` (HTTP on loopback, base64 PNG in JSON) | {F(httpMs)} ms (+{F(httpMs - inProcMs)} ms) |
        <!-- engine:end -->
        """;
    var path = Path.Combine(root, "docs", "benchmarks.md");
    var text = File.ReadAllText(path);
    var start = text.IndexOf("<!-- engine:begin -->", StringComparison.Ordinal);
    var end = text.IndexOf("<!-- engine:end -->", StringComparison.Ordinal);
    text = start >= 0 ? text[..start] + section.Trim() + text[(end + "<!-- engine:end -->".Length)..] : text.TrimEnd() + "\n\n" + section.Trim() + "\n";
    File.WriteAllText(path, text);
    Console.WriteLine($"written to {path}");
}
finally
{
    Directory.Delete(work, recursive: true);
}

static string FindRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Atelier.slnx")))
    {
        dir = dir.Parent;
    }

    return dir?.FullName ?? throw new InvalidOperationException("run from inside the repository");
}
