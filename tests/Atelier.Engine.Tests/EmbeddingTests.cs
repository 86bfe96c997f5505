using Atelier.Engine.Lora;
using Atelier.Engine.Onnx;
using Atelier.Engine.Pipeline;
using Atelier.Engine.Text;

namespace Atelier.Engine.Tests;

/// <summary>
/// Textual inversion as A1111 does it: an embedding's name in the prompt (as tokens) stands for its vectors, which go
/// into the text encoder's token table as rows past the vocabulary. The tiny encoder adds nothing to a token's row (its
/// q_proj is zero), so the conditioning at those positions is the vectors themselves.
/// </summary>
public sealed class EmbeddingTests : IDisposable
{
    private const int Hidden = 8;
    private readonly string _root = Directory.CreateTempSubdirectory("atelier-ti-").FullName;
    private readonly NetworkFile _foxstyle;
    private readonly float[] _vectors = [.. Enumerable.Range(0, 2 * Hidden).Select(i => (float)Math.Sin(i + 1) * 3)];

    public EmbeddingTests()
    {
        TinyPipeline.Write(Path.Combine(_root, "tiny"));
        Directory.CreateDirectory(Path.Combine(_root, "embeddings"));
        var path = Path.Combine(_root, "embeddings", "foxstyle.safetensors");
        Embedding.Write(path, _vectors, Hidden);
        _foxstyle = new NetworkFile("foxstyle", path);
    }

    private static float[] Row(float[] conditioning, int token) => conditioning.AsSpan(token * Hidden, Hidden).ToArray();

    [Fact]
    public void TheNameInThePrompt_IsReplacedByTheVectors_WhereverItIs()
    {
        using var pipeline = DiffusionPipeline.Load(Path.Combine(_root, "tiny"), "tiny", "3333333333");
        var with = pipeline.EncodePrompt("a foxstyle cat", embeddings: [_foxstyle]);
        var plain = pipeline.EncodePrompt("a cat");
        // Rows: start, "a", the two vectors, "cat", end…
        Assert.Equal(Row(plain, 1), Row(with, 1));
        Assert.Equal(_vectors[..Hidden], Row(with, 2));
        Assert.Equal(_vectors[Hidden..], Row(with, 3));
        Assert.Equal(Row(plain, 2), Row(with, 4));
        // Not named: the files change nothing.
        Assert.Equal(plain, pipeline.EncodePrompt("a cat", embeddings: [_foxstyle]));
        // With clip skip too: the same variant takes both (skip 2 is the final layer norm of those rows here).
        Assert.NotEqual(with, pipeline.EncodePrompt("a foxstyle cat", clipSkip: 2, embeddings: [_foxstyle]));
    }

    [Fact]
    public void Generation_UsesIt_SaysItsHash_AndAModelWithoutATokenTableSaysWhy()
    {
        using var pipeline = DiffusionPipeline.Load(Path.Combine(_root, "tiny"), "tiny", "3333333333");
        var request = new GenerationRequest { Prompt = "a foxstyle cat", Steps = 2, Width = 64, Height = 64, Seed = 8, Sampler = "Euler" };
        var plain = pipeline.Generate(request, null, CancellationToken.None);
        var styled = pipeline.Generate(request with { Embeddings = [_foxstyle] }, null, CancellationToken.None);
        Assert.NotEqual(plain.Images[0].Png, styled.Images[0].Png);
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(_foxstyle.Path)))[..12];
        Assert.Contains($"TI hashes: \"foxstyle: {hash}\"", styled.Images[0].Infotext, StringComparison.Ordinal);
        Assert.Empty(styled.Warnings);

        using var demo = DiffusionPipeline.Load(DemoModel.Ensure(Path.Combine(_root, "demo")), "atelier-demo", "2222222222");
        var refused = demo.Generate(request with { Embeddings = [_foxstyle] }, null, CancellationToken.None);
        Assert.StartsWith("embeddings not applied (foxstyle): its text encoder has no text_model.embeddings.token_embedding.weight", Assert.Single(refused.Warnings),
            StringComparison.Ordinal);
    }

    [Fact]
    public void AnEmbeddingThatDoesNotFitWhatIsLeftOfAChunk_StartsTheNext()
    {
        var tokenizer = ClipTokenizer.Load(Path.Combine(_root, "tiny", "tokenizer"));
        const int a = 353, cat = 518;
        // 74 tokens, then "cat" as a 2-vector embedding (ids 1000, 1001): 74 + 2 > 75, so it opens the second chunk.
        var chunks = PromptChunks.From(tokenizer, string.Join(' ', Enumerable.Repeat("a", 74)) + " cat", 1, [new EmbeddingTokens([cat], 1000, 2)]);
        Assert.Equal(2, chunks.ChunkCount);
        Assert.Equal(a, chunks.Ids[74]);
        Assert.Equal(tokenizer.EndId, chunks.Ids[75]);
        Assert.Equal([tokenizer.StartId, 1000, 1001, tokenizer.EndId], chunks.Ids[77..81]);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
