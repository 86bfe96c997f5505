// The engine's features on the device against the CPU: the tiny fp32 pipeline (TinyPipeline, with a LoRA, an embedding,
// a VAE and an ONNX upscaler beside it) renders each case twice, once on the CPU and once on the device, with the same
// seed, and the two pictures are compared byte by byte. A feature that works on the CPU and breaks on the device (an
// initializer override the provider ignores, a graph of the device latents that misreads a mask) shows as a difference
// far above the last-bit noise of two providers' arithmetic; a feature that does nothing on the device shows as a case
// that equals the plain picture there but not on the CPU.
using System.Text;
using Atelier.Engine.Images;
using Atelier.Engine.Lora;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;

internal static class Parity
{
    private sealed record Case(string Name, GenerationRequest Request, IReadOnlyList<LoraUse>? Loras = null, bool Xl = false, bool Refined = false);

    /// <summary>Runs every case on both settings; writes parity.md to <paramref name="output"/>; 0 when every case is within <paramref name="tolerance"/> levels.</summary>
    public static int Run(DeviceSettings device, string output, string models, int tolerance)
    {
        var root = Path.Combine(models, "parity");
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }

        var model = Path.Combine(root, "tiny");
        TinyPipeline.Write(model);
        var xl = Path.Combine(root, "tiny-xl");
        TinyPipeline.WriteXl(xl);
        var refiner = Path.Combine(root, "tiny-refiner");
        TinyPipeline.WriteXlRefiner(refiner);
        var lora = Path.Combine(root, "foxy.safetensors");
        TinyPipeline.WriteLora(lora, 8);
        var upscaler = Path.Combine(root, "ESRGAN", "TinyScale.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(upscaler)!);
        TinyPipeline.WriteUpscaler(upscaler);
        var embedding = Path.Combine(root, "embeddings", "foxstyle.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(embedding)!);
        Embedding.Write(embedding, [.. Enumerable.Range(0, 16).Select(i => (float)Math.Sin(i + 1) * 3)], 8);
        var vae = Path.Combine(root, "VAE", "flat");
        TinyPipeline.WriteFlatVae(vae);

        var picture = new byte[64 * 64 * 3];
        for (var i = 0; i < picture.Length; i++)
        {
            picture[i] = (byte)((i * 7) % 251);
        }

        var mask = new byte[64 * 64];
        for (var y = 0; y < 64; y++)
        {
            for (var x = 0; x < 64; x++)
            {
                mask[(y * 64) + x] = (byte)(x is > 16 and < 48 && y is > 20 and < 44 ? 255 : 0);
            }
        }

        var plain = new GenerationRequest { Prompt = "a red fox in the snow", NegativePrompt = "blurry", Steps = 4, Width = 64, Height = 64, Seed = 11, Sampler = "Euler", CfgScale = 7 };
        var img2img = plain with { InitImage = (picture, 64, 64), DenoisingStrength = 0.6 };
        var (loras, _) = LoraUse.FromPrompt("<lora:foxy:0.9>", name => name == "foxy" ? lora : null);
        Case[] cases =
        [
            new("txt2img, Euler (latents on the device)", plain),
            new("txt2img, Euler a (noise drawn each step)", plain with { Sampler = "Euler a" }),
            new("txt2img, DPM++ 2M SDE, Karras", plain with { Sampler = "DPM++ 2M SDE", Schedule = "Karras" }),
            new("txt2img, DPM++ SDE (two stages a step)", plain with { Sampler = "DPM++ SDE" }),
            new("txt2img, LMS (sampler on the host)", plain with { Sampler = "LMS" }),
            new("txt2img, DDIM", plain with { Sampler = "DDIM" }),
            new("txt2img, DDIM CFG++ (unconditional read back)", plain with { Sampler = "DDIM CFG++" }),
            new("txt2img, UniPC (sampler on the host)", plain with { Sampler = "UniPC" }),
            new("txt2img, batch 2, variation seed 0.3", plain with { BatchSize = 2, Subseed = 5, SubseedStrength = 0.3 }),
            new("txt2img, CPU noise source", plain with { RandnSource = Atelier.Engine.Sampling.NoiseSources.Cpu }),
            new("img2img, strength 0.6", img2img),
            new("inpainting, only masked, fill", img2img with
            {
                DenoisingStrength = 0.9,
                Inpaint = Inpainting.Prepare((picture, 64, 64), (mask, 64, 64), new InpaintSettings { Padding = 8 }, 64, 64, ImageDecoder.JustResize),
            }),
            new("inpainting, whole picture, latent noise", img2img with
            {
                DenoisingStrength = 1,
                Inpaint = Inpainting.Prepare((picture, 64, 64), (mask, 64, 64), new InpaintSettings { FullRes = false, Fill = InpaintSettings.FillLatentNoise }, 64, 64, ImageDecoder.JustResize),
            }),
            new("LoRA at 0.9 (initializer overrides)", plain, loras),
            new("clip skip 2", plain with { ClipSkip = 2 }),
            new("textual inversion", plain with { Prompt = "a foxstyle red fox in the snow", Embeddings = [new NetworkFile("foxstyle", embedding)] }),
            new("VAE chosen (sd_vae)", plain with { Vae = new NetworkFile("flat", vae) }),
            new("hires fix, latent ×2", plain with { Hires = new HiresFix { Scale = 2, SecondPassSteps = 3 }, DenoisingStrength = 0.6 }),
            new("hires fix, ONNX upscaler ×2", plain with
            {
                Hires = new HiresFix { Scale = 2, SecondPassSteps = 3, Upscaler = "TinyScale" }, DenoisingStrength = 0.6,
                Upscalers = [new NetworkFile("TinyScale", upscaler)],
            }),
            new("img2img, SD upscale script ×2 (9 tiles)", img2img with { DenoisingStrength = 0.4, SdUpscale = new SdUpscaleScript(16, "Lanczos", 2) }),
            new("SDXL txt2img (two encoders, pooled, time ids)", plain, Xl: true),
            new("SDXL with the refiner from 0.5", plain with { Steps = 6 }, Xl: true, Refined: true),
        ];

        var cpu = new DeviceSettings { Device = EngineDevice.Cpu };
        var rows = new StringBuilder();
        var failed = 0;
        byte[][]? plainCpu = null, plainDevice = null;
        foreach (var c in cases)
        {
            string row;
            try
            {
                var onCpu = Render(c.Xl ? xl : model, c.Refined ? refiner : null, cpu, c);
                var onDevice = Render(c.Xl ? xl : model, c.Refined ? refiner : null, device, c);
                plainCpu ??= onCpu;
                plainDevice ??= onDevice;
                var (max, mean) = Difference(onCpu, onDevice);
                // A case other than the first must change the picture on both sides, or the feature did nothing there.
                var effect = ReferenceEquals(onCpu, plainCpu) ? "(the reference)"
                    : $"{(Same(onCpu, plainCpu) ? "no" : "yes")} / {(Same(onDevice, plainDevice) ? "no" : "yes")}";
                var ok = max <= tolerance && (ReferenceEquals(onCpu, plainCpu) || Same(onCpu, plainCpu) == Same(onDevice, plainDevice));
                failed += ok ? 0 : 1;
                row = $"| {c.Name} | {max} | {mean:F3} | {effect} | {(ok ? "yes" : "**no**")} |";
            }
            catch (Exception e)
            {
                failed++;
                row = $"| {c.Name} | — | — | — | **no**: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} |";
            }

            Console.WriteLine(row);
            rows.AppendLine(row);
        }

        var md = $"""
            #### The engine's features on {device.Device} against the CPU ({DateTime.UtcNow:yyyy-MM-dd})

            The tiny fp32 pipeline (64×64, 4 steps, seed 11, CFG 7), each case rendered on the CPU and on {device.Device}
            (`bench/Atelier.Bench.Gpu --parity`). Difference: the largest and the mean difference of the two pictures' RGB
            bytes (0–255). Changes the picture: whether the case differs from the plain txt2img on the CPU / on the device.
            A case passes when the largest difference is at most {tolerance} and the feature changes the picture on both
            sides or on neither.

            | case | largest difference | mean difference | changes the picture (CPU / device) | passes |
            | --- | --- | --- | --- | --- |
            {rows.ToString().TrimEnd()}

            {cases.Length - failed} of {cases.Length} cases pass.

            """;
        File.WriteAllText(Path.Combine(output, "parity.md"), md);
        Console.WriteLine($"{cases.Length - failed} of {cases.Length} cases pass");
        return failed == 0 ? 0 : 1;
    }

    private static byte[][] Render(string model, string? refiner, DeviceSettings settings, Case c)
    {
        using var pipeline = DiffusionPipeline.Load(model, "tiny", "0000000000", settings, c.Loras);
        using var refining = refiner is null ? null : DiffusionPipeline.Load(refiner, "tiny-refiner", "1111111111", settings);
        var result = pipeline.Generate(refining is null ? c.Request : c.Request with { Refiner = new RefinerUse(refining, 0.5, "tiny-refiner [1111111111]") },
            null, CancellationToken.None);
        return [.. result.Images.Select(i => PngDecoder.Decode(i.Png).Rgb)];
    }

    private static bool Same(byte[][] a, byte[][] b) => a.Length == b.Length && a.Zip(b).All(p => p.First.AsSpan().SequenceEqual(p.Second));

    private static (int Max, double Mean) Difference(byte[][] a, byte[][] b)
    {
        if (a.Length != b.Length || a.Zip(b).Any(p => p.First.Length != p.Second.Length))
        {
            return (255, 255);
        }

        var max = 0;
        long sum = 0, count = 0;
        foreach (var (x, y) in a.Zip(b))
        {
            for (var i = 0; i < x.Length; i++)
            {
                var d = Math.Abs(x[i] - y[i]);
                max = Math.Max(max, d);
                sum += d;
                count++;
            }
        }

        return (max, (double)sum / count);
    }
}
