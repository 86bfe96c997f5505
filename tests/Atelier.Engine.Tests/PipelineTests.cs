using System.Buffers.Binary;
using System.IO.Compression;
using Atelier.Engine.Images;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using Atelier.Engine.Text;

namespace Atelier.Engine.Tests;

/// <summary>A tiny pipeline generated on disk, once for the class, run through ONNX Runtime.</summary>
public sealed class TinyModelFixture : IDisposable
{
    public TinyModelFixture()
    {
        Folder = Directory.CreateTempSubdirectory("atelier-tiny-").FullName;
        TinyPipeline.Write(Folder);
        Pipeline = DiffusionPipeline.Load(Folder, "tiny", "0123456789");
    }

    public string Folder { get; }
    public DiffusionPipeline Pipeline { get; }

    public void Dispose()
    {
        Pipeline.Dispose();
        Directory.Delete(Folder, recursive: true);
    }
}

public class PipelineTests(TinyModelFixture tiny) : IClassFixture<TinyModelFixture>
{
    private static GenerationRequest Request(long seed = 42) =>
        new() { Prompt = "a red fox", Steps = 8, Width = 64, Height = 64, Seed = seed, Sampler = "Euler", CfgScale = 7 };

    [Fact]
    public void Txt2Img_WritesPngWithInfotext()
    {
        var result = tiny.Pipeline.Generate(Request() with { NegativePrompt = "blurry" }, null, CancellationToken.None);
        var image = Assert.Single(result.Images);
        var (w, h, idat) = ReadPng(image.Png);
        Assert.Equal((64, 64), (w, h));
        Assert.Equal(64 * (1 + (64 * 3)), idat.Length);
        var text = Png.ReadText(image.Png);
        Assert.Equal(image.Infotext, text["parameters"]);
        Assert.Equal("a red fox\nNegative prompt: blurry\nSteps: 8, Sampler: Euler, Schedule type: Automatic, CFG scale: 7, Seed: 42, Size: 64x64, Model hash: 0123456789, Model: tiny, Version: atelier",
            image.Infotext);
    }

    [Fact]
    public void SameRequestAndSeed_SamePngBytes()
    {
        var a = tiny.Pipeline.Generate(Request(), null, CancellationToken.None).Images[0].Png;
        var b = tiny.Pipeline.Generate(Request(), null, CancellationToken.None).Images[0].Png;
        var c = tiny.Pipeline.Generate(Request(seed: 43), null, CancellationToken.None).Images[0].Png;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void GuidanceAndPrompt_ChangeTheImage()
    {
        var plain = tiny.Pipeline.Generate(Request(), null, CancellationToken.None).Images[0].Png;
        var noGuidance = tiny.Pipeline.Generate(Request() with { CfgScale = 1 }, null, CancellationToken.None).Images[0].Png;
        var otherPrompt = tiny.Pipeline.Generate(Request() with { Prompt = "a cat" }, null, CancellationToken.None).Images[0].Png;
        Assert.NotEqual(plain, noGuidance);
        Assert.NotEqual(plain, otherPrompt);
    }

    [Fact]
    public void BatchAndIterations_SeedPlusIndexPerImage()
    {
        var result = tiny.Pipeline.Generate(Request(seed: 100) with { BatchSize = 2, Iterations = 2 }, null, CancellationToken.None);
        Assert.Equal([100L, 101, 102, 103], result.Seeds);
        Assert.Equal(4, result.Images.Count);
        Assert.Equal(tiny.Pipeline.Generate(Request(seed: 102), null, CancellationToken.None).Images[0].Png.Length, result.Images[2].Png.Length);
        var random = tiny.Pipeline.Generate(Request(seed: -1), null, CancellationToken.None);
        Assert.InRange(random.FirstSeed, 0, uint.MaxValue);
    }

    [Theory]
    [InlineData("Euler a")]
    [InlineData("DPM++ 2M")]
    [InlineData("DPM++ 2M Karras")]
    [InlineData("LMS")]
    [InlineData("DDIM")]
    [InlineData("DPM++ SDE")]
    [InlineData("Restart")]
    [InlineData("PLMS")]
    public void EverySampler_Runs(string sampler)
    {
        var steps = new List<int>();
        var result = tiny.Pipeline.Generate(Request() with { Sampler = sampler }, p => steps.Add(p.Step), CancellationToken.None);
        Assert.Single(result.Images);
        Assert.Equal(Enumerable.Range(1, 8), steps);
    }

    [Fact]
    public void Restart_From20Steps_RestartsAndStillReportsEachStep()
    {
        var steps = new List<(int Step, int Of)>();
        var result = tiny.Pipeline.Generate(Request() with { Sampler = "Restart", Steps = 24 }, p => steps.Add((p.Step, p.Steps)), CancellationToken.None);
        Assert.Single(result.Images);
        Assert.Equal(Enumerable.Range(1, 24).Select(i => (i, 24)), steps);
        Assert.Contains("Steps: 24, Sampler: Restart,", result.Images[0].Infotext, StringComparison.Ordinal);
    }

    [Fact]
    public void BadSizesAndNames_AreRefusedClearly()
    {
        Assert.Contains("multiples of 8", Assert.Throws<EngineRequestException>(() => tiny.Pipeline.Generate(Request() with { Width = 100 }, null, CancellationToken.None)).Message, StringComparison.Ordinal);
        Assert.Equal("Sampler not found", Assert.Throws<EngineRequestException>(() => tiny.Pipeline.Generate(Request() with { Sampler = "Nope" }, null, CancellationToken.None)).Message);
    }

    [Fact]
    public void Cancellation_StopsMidRun()
    {
        using var cts = new CancellationTokenSource();
        var seen = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => tiny.Pipeline.Generate(Request() with { Steps = 50 }, p =>
        {
            seen = p.Step;
            if (p.Step == 3)
            {
                cts.Cancel();
            }
        }, cts.Token));
        Assert.Equal(3, seen);
    }

    [Fact]
    public void Img2Img_StartsFromTheInitImage()
    {
        var rgb = new byte[64 * 64 * 3];
        Array.Fill(rgb, (byte)200);
        var low = tiny.Pipeline.Generate(Request() with { InitImage = (rgb, 64, 64), DenoisingStrength = 0.25 }, null, CancellationToken.None);
        var steps = new List<int>();
        tiny.Pipeline.Generate(Request() with { InitImage = (rgb, 64, 64), DenoisingStrength = 0.5 }, p => steps.Add(p.Step), CancellationToken.None);
        Assert.Equal(5, steps.Count); // as A1111: t_enc = int(0.5 × 8) = 4, and the last t_enc + 1 sigmas of the 8-step schedule are run
        Assert.Contains("Denoising strength: 0.25", low.Images[0].Infotext, StringComparison.Ordinal);
    }

    [Fact]
    public void Tokenizer_GoldenIds()
    {
        var tokenizer = ClipTokenizer.Load(Path.Combine(tiny.Folder, "tokenizer"));
        // Byte alphabet 0-255, the same with </w> 256-511, then the merges' new symbols: re 512, ed</w> 513, fo 514, fox</w> 515, red</w> 516, ca 517, cat</w> 518.
        Assert.Equal([353, 516, 515], tokenizer.Encode("A  Red\tfox"));
        Assert.Equal([518, 256 + ',', 353], tokenizer.Encode("cat, a"));
        Assert.Equal(519, tokenizer.StartId);
        Assert.Equal(520, tokenizer.EndId);
        var chunks = PromptChunks.From(tokenizer, string.Join(' ', Enumerable.Repeat("cat", 80)));
        Assert.Equal(2, chunks.ChunkCount);
        Assert.Equal(519, chunks.Ids[0]);
        Assert.Equal(520, chunks.Ids[76]);
        Assert.Equal(519, chunks.Ids[77]);
        Assert.Equal(518, chunks.Ids[77 + 5]);
        Assert.Equal(520, chunks.Ids[77 + 6]);
    }

    [Fact]
    public void Chunks_BreakEndsAChunk_AndAFullChunkEndsAtACommaWithinTwentyTokens_AsA1111()
    {
        var tokenizer = ClipTokenizer.Load(Path.Combine(tiny.Folder, "tokenizer"));
        const int cat = 518, comma = 256 + ',', start = 519, end = 520;
        // BREAK (the word alone, in capitals) pads the chunk it ends; "BREAKfast" and "break" are words.
        var broken = PromptChunks.From(tokenizer, "cat BREAK cat");
        Assert.Equal(2, broken.ChunkCount);
        Assert.Equal([start, cat, end], broken.Ids[..3]);
        Assert.Equal([start, cat, end], broken.Ids[77..80]);
        Assert.Equal(1, PromptChunks.From(tokenizer, "cat break cat").ChunkCount);
        Assert.Equal([new("cat", 1f), PromptWeights.Break, new("(x)", 1.1f)], PromptWeights.Parse("cat BREAK (\\(x\\))"));

        // 70 cats, a comma, 10 cats: the chunk fills 4 tokens after the comma, so it ends at the comma and those 4 move on.
        var backtracked = PromptChunks.From(tokenizer, string.Join(' ', Enumerable.Repeat("cat", 70)) + ", " + string.Join(' ', Enumerable.Repeat("cat", 10)));
        Assert.Equal(2, backtracked.ChunkCount);
        Assert.Equal([cat, comma, end], backtracked.Ids[70..73]);
        Assert.Equal(Enumerable.Repeat(cat, 10), backtracked.Ids[78..88]);
        Assert.Equal(end, backtracked.Ids[88]);

        // A comma 65 tokens back is too far: the chunk is cut at 75 tokens.
        var cut = PromptChunks.From(tokenizer, string.Join(' ', Enumerable.Repeat("cat", 10)) + ", " + string.Join(' ', Enumerable.Repeat("cat", 70)));
        Assert.Equal([cat, end], cut.Ids[75..77]);
        Assert.Equal([start, cat, cat, cat, cat, cat, cat, end], cut.Ids[77..85]);
    }

    [Fact]
    public void DdimCfgPp_RunsThroughThePipeline_WithTheUnconditionalPrediction()
    {
        var ddim = tiny.Pipeline.Generate(Request() with { Sampler = "DDIM" }, null, CancellationToken.None).Images[0];
        var cfgpp = tiny.Pipeline.Generate(Request() with { Sampler = "DDIM CFG++" }, null, CancellationToken.None).Images[0];
        Assert.NotEqual(PngDecoder.Decode(ddim.Png).Rgb, PngDecoder.Decode(cfgpp.Png).Rgb);
        Assert.Contains("Sampler: DDIM CFG++", cfgpp.Infotext, StringComparison.Ordinal);
    }

    [Fact]
    public void UniPc_RunsThroughThePipeline_InTxt2ImgImg2ImgAndTheHiresPass_WithA1111sStepCount()
    {
        var counted = new List<int>();
        var unipc = tiny.Pipeline.Generate(Request() with { Sampler = "UniPC", Steps = 3 }, p => counted.Add(p.Step), CancellationToken.None).Images[0];
        var ddim = tiny.Pipeline.Generate(Request() with { Sampler = "DDIM", Steps = 3 }, null, CancellationToken.None).Images[0];
        // range(0, 1000, 333) has 4 timesteps, so A1111's UniPC takes 4 steps for 3.
        Assert.Equal([1, 2, 3, 4], counted);
        Assert.NotEqual(PngDecoder.Decode(ddim.Png).Rgb, PngDecoder.Decode(unipc.Png).Rgb);
        Assert.Contains("Sampler: UniPC", unipc.Infotext, StringComparison.Ordinal);

        var picture = PngDecoder.Decode(unipc.Png);
        counted.Clear();
        var img2img = tiny.Pipeline.Generate(Request() with { Sampler = "UniPC", Steps = 10, InitImage = (picture.Rgb, picture.Width, picture.Height), DenoisingStrength = 0.5 },
            p => counted.Add(p.Step), CancellationToken.None);
        Assert.Equal(5, counted.Count); // t_enc = 5 steps from t = 0.402
        Assert.Single(img2img.Images);

        var hires = tiny.Pipeline.Generate(Request() with { Sampler = "UniPC", Steps = 4, Hires = new HiresFix { Scale = 2, SecondPassSteps = 3 }, DenoisingStrength = 0.6 },
            null, CancellationToken.None);
        Assert.Equal(Request().Width * 2, PngDecoder.Decode(hires.Images[0].Png).Width);
    }

    [Fact]
    public void ExtraNetworks_AreTakenOutOfThePrompt_TheInfotextKeepsThem()
    {
        var (text, networks) = ExtraNetworks.Strip("a <lora:foxy:0.8> fox <hypernet:ink>");
        Assert.Equal("a  fox ", text);
        Assert.Equal([("lora", "foxy", "0.8"), ("hypernet", "ink", "")],
            networks.Select(n => (n.Kind, n.Name, n.Arguments.Count > 1 ? n.Arguments[1] : "")));
        var tagged = tiny.Pipeline.Generate(Request() with { Prompt = "a <lora:foxy:0.8> fox" }, null, CancellationToken.None).Images[0];
        var plain = tiny.Pipeline.Generate(Request() with { Prompt = "a  fox" }, null, CancellationToken.None).Images[0];
        Assert.Equal(PngDecoder.Decode(plain.Png).Rgb, PngDecoder.Decode(tagged.Png).Rgb);
        Assert.StartsWith("a <lora:foxy:0.8> fox\n", tagged.Infotext, StringComparison.Ordinal);
    }

    [Fact]
    public void Emphasis_FollowsAutomatic1111()
    {
        Assert.Equal([new("red", 1.5f), new(" fox", 1f)], PromptWeights.Parse("(red:1.5) fox"));
        var nested = PromptWeights.Parse("((cat))");
        Assert.Equal(1.21f, nested[0].Weight, 4);
        Assert.Equal(1 / 1.1f, PromptWeights.Parse("[dog]")[0].Weight, 4);
        Assert.Equal([new("(x)", 1f)], PromptWeights.Parse("\\(x\\)"));
        Assert.Equal(1.1f, PromptWeights.Parse("(a b")[0].Weight, 4);
    }

    [Fact]
    public void Infotext_ParsesA1111Sample()
    {
        var (prompt, negative, p) = Infotext.Parse("a castle\nNegative prompt: fog, rain\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b");
        Assert.Equal("a castle", prompt);
        Assert.Equal("fog, rain", negative);
        Assert.Equal("Euler a", p["Sampler"]);
        Assert.Equal("512", p["Size-1"]);
        Assert.Equal("1", p["Clip skip"]);
        var text = Infotext.Format("p", null, [new("Steps", 8), new("Note", "a, b"), new("Empty", null), new("Seed", 1)]);
        Assert.Equal("p\nSteps: 8, Note: \"a, b\", Seed: 1", text);
        Assert.Equal("a, b", Infotext.Parse(text).Parameters["Note"]);
    }

    private static (int W, int H, byte[] Idat) ReadPng(byte[] png)
    {
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        var pos = 8;
        int w = 0, h = 0;
        using var idat = new MemoryStream();
        while (pos < png.Length)
        {
            var len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            var type = System.Text.Encoding.ASCII.GetString(png, pos + 4, 4);
            var data = png.AsSpan(pos + 8, len);
            var crc = new System.IO.Hashing.Crc32();
            crc.Append(png.AsSpan(pos + 4, 4 + len));
            Assert.Equal(crc.GetCurrentHashAsUInt32(), BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + len)));
            if (type == "IHDR")
            {
                w = BinaryPrimitives.ReadInt32BigEndian(data);
                h = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
            }
            else if (type == "IDAT")
            {
                idat.Write(data);
            }

            pos += 12 + len;
        }

        idat.Position = 0;
        using var z = new ZLibStream(idat, CompressionMode.Decompress);
        using var raw = new MemoryStream();
        z.CopyTo(raw);
        return (w, h, raw.ToArray());
    }
}
