namespace Atelier.Engine.Text;

/// <summary>A prompt as the text encoder takes it: 77-token chunks (start, 75 tokens, end/padding) with a weight per token.</summary>
public sealed record PromptChunks(int[] Ids, float[] Weights, int ChunkCount)
{
    public const int TokensPerChunk = ClipTokenizer.ContextLength - 2;

    /// <summary>A1111's <c>comma_padding_backtrack</c> default: a chunk that fills up within this many tokens of a comma ends at the comma.</summary>
    public const int CommaBacktrack = 20;

    /// <summary>
    /// Tokenizes with emphasis and splits into chunks as A1111's <c>tokenize_line</c> does: 75 tokens a chunk, a
    /// <c>BREAK</c> ends the chunk (padded), and a chunk that fills up within <see cref="CommaBacktrack"/> tokens of its
    /// last comma ends after that comma, the tokens after it moving to the next chunk. At least <paramref name="minChunks"/>.
    /// </summary>
    /// <remarks>
    /// With <paramref name="embeddings"/>, a run of tokens that spells an embedding's name becomes its vectors' ids (the
    /// longest name first, as A1111's <c>find_embedding_at_position</c>); an embedding that does not fit in what is left
    /// of a chunk starts the next one.
    /// </remarks>
    public static PromptChunks From(ClipTokenizer tokenizer, string prompt, int minChunks = 1, IReadOnlyList<Lora.EmbeddingTokens>? embeddings = null)
    {
        var comma = tokenizer.Encode(",") is [var id] ? id : -1;
        var chunks = new List<List<(int Id, float Weight)>>();
        var chunk = new List<(int Id, float Weight)>();
        var lastComma = -1;

        void Next()
        {
            chunks.Add(chunk);
            chunk = [];
            lastComma = -1;
        }

        foreach (var piece in PromptWeights.Parse(prompt))
        {
            if (piece == PromptWeights.Break)
            {
                Next();
                continue;
            }

            var tokens = tokenizer.Encode(piece.Text);
            for (var position = 0; position < tokens.Count; position++)
            {
                var token = tokens[position];
                if (Match(tokens, position, embeddings) is { } embedding)
                {
                    if (chunk.Count + embedding.Count > TokensPerChunk)
                    {
                        Next();
                    }

                    for (var v = 0; v < embedding.Count; v++)
                    {
                        chunk.Add((embedding.FirstId + v, piece.Weight));
                    }

                    position += embedding.NameIds.Count - 1;
                    continue;
                }

                if (token == comma)
                {
                    lastComma = chunk.Count;
                }
                else if (chunk.Count == TokensPerChunk && lastComma != -1 && chunk.Count - lastComma <= CommaBacktrack)
                {
                    var moved = chunk[(lastComma + 1)..];
                    chunk.RemoveRange(lastComma + 1, chunk.Count - lastComma - 1);
                    Next();
                    chunk.AddRange(moved);
                }

                if (chunk.Count == TokensPerChunk)
                {
                    Next();
                }

                chunk.Add((token, piece.Weight));
            }
        }

        if (chunk.Count > 0 || chunks.Count == 0)
        {
            chunks.Add(chunk);
        }

        while (chunks.Count < minChunks)
        {
            chunks.Add([]);
        }

        var ids = new int[chunks.Count * ClipTokenizer.ContextLength];
        var weights = new float[ids.Length];
        for (var c = 0; c < chunks.Count; c++)
        {
            var offset = c * ClipTokenizer.ContextLength;
            ids[offset] = tokenizer.StartId;
            weights[offset] = 1;
            for (var k = 1; k < ClipTokenizer.ContextLength; k++)
            {
                var inChunk = k - 1 < chunks[c].Count;
                ids[offset + k] = inChunk ? chunks[c][k - 1].Id : tokenizer.EndId;
                weights[offset + k] = inChunk ? chunks[c][k - 1].Weight : 1;
            }
        }

        return new PromptChunks(ids, weights, chunks.Count);
    }

    /// <summary>The embedding whose name's tokens start at <paramref name="position"/> (the longest), or null.</summary>
    private static Lora.EmbeddingTokens? Match(IReadOnlyList<int> tokens, int position, IReadOnlyList<Lora.EmbeddingTokens>? embeddings)
    {
        Lora.EmbeddingTokens? best = null;
        foreach (var e in embeddings ?? [])
        {
            if (e.NameIds.Count == 0 || position + e.NameIds.Count > tokens.Count || (best is not null && best.NameIds.Count >= e.NameIds.Count))
            {
                continue;
            }

            var same = true;
            for (var k = 0; k < e.NameIds.Count && same; k++)
            {
                same = tokens[position + k] == e.NameIds[k];
            }

            if (same)
            {
                best = e;
            }
        }

        return best;
    }
}
