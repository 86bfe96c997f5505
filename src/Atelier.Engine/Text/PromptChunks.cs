namespace Atelier.Engine.Text;

/// <summary>A prompt as the text encoder takes it: 77-token chunks (start, 75 tokens, end/padding) with a weight per token.</summary>
public sealed record PromptChunks(int[] Ids, float[] Weights, int ChunkCount)
{
    public const int TokensPerChunk = ClipTokenizer.ContextLength - 2;

    /// <summary>Tokenizes with emphasis; prompts over 75 tokens split into more chunks (at least <paramref name="minChunks"/>).</summary>
    public static PromptChunks From(ClipTokenizer tokenizer, string prompt, int minChunks = 1)
    {
        var tokens = new List<(int Id, float Weight)>();
        foreach (var piece in PromptWeights.Parse(prompt))
        {
            tokens.AddRange(tokenizer.Encode(piece.Text).Select(id => (id, piece.Weight)));
        }

        var chunks = Math.Max(minChunks, Math.Max(1, (tokens.Count + TokensPerChunk - 1) / TokensPerChunk));
        var ids = new int[chunks * ClipTokenizer.ContextLength];
        var weights = new float[ids.Length];
        for (var c = 0; c < chunks; c++)
        {
            var offset = c * ClipTokenizer.ContextLength;
            ids[offset] = tokenizer.StartId;
            weights[offset] = 1;
            for (var k = 1; k < ClipTokenizer.ContextLength; k++)
            {
                var index = (c * TokensPerChunk) + k - 1;
                var inChunk = k <= TokensPerChunk && index < tokens.Count;
                ids[offset + k] = inChunk ? tokens[index].Id : tokenizer.EndId;
                weights[offset + k] = inChunk ? tokens[index].Weight : 1;
            }
        }

        return new PromptChunks(ids, weights, chunks);
    }
}
