using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Atelier.Engine.Text;

/// <summary>
/// CLIP's byte-level BPE tokenizer, read from a diffusers <c>tokenizer/vocab.json</c> and <c>merges.txt</c>: text is
/// cleaned and lower-cased, split with CLIP's pattern, mapped byte by byte to printable characters, merged by rank,
/// and the last symbol of each word carries <c>&lt;/w&gt;</c>.
/// </summary>
public sealed partial class ClipTokenizer
{
    public const int ContextLength = 77;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<(string, string), int> _ranks = [];
    private readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private static readonly string[] ByteToUnicode = BuildByteMap();

    public ClipTokenizer(Dictionary<string, int> vocab, IEnumerable<string> merges)
    {
        _vocab = vocab;
        var rank = 0;
        foreach (var line in merges)
        {
            if (line.StartsWith("#version", StringComparison.Ordinal) || string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var parts = line.Split(' ');
            if (parts.Length == 2)
            {
                _ranks.TryAdd((parts[0], parts[1]), rank++);
            }
        }

        StartId = vocab["<|startoftext|>"];
        EndId = vocab["<|endoftext|>"];
    }

    public int StartId { get; }
    public int EndId { get; }

    public static ClipTokenizer Load(string tokenizerFolder)
    {
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(tokenizerFolder, "vocab.json")))
                    ?? throw new InvalidDataException("vocab.json is empty");
        return new ClipTokenizer(vocab, File.ReadLines(Path.Combine(tokenizerFolder, "merges.txt")));
    }

    /// <summary>The token ids of a text, without start and end tokens.</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        var ids = new List<int>();
        var clean = Whitespace().Replace(text.Normalize(NormalizationForm.FormC), " ").Trim().ToLowerInvariant();
        foreach (Match m in Pattern().Matches(clean))
        {
            if (!_cache.TryGetValue(m.Value, out var word))
            {
                word = [.. Bpe(string.Concat(Encoding.UTF8.GetBytes(m.Value).Select(b => ByteToUnicode[b]))).Select(Id)];
                if (_cache.Count < 10_000)
                {
                    _cache[m.Value] = word;
                }
            }

            ids.AddRange(word);
        }

        return ids;
    }

    private int Id(string symbol) => _vocab.TryGetValue(symbol, out var id) ? id : EndId;

    private List<string> Bpe(string token)
    {
        // Symbols: one per character, the last with the end-of-word marker.
        var symbols = token.Select(c => c.ToString()).ToList();
        if (symbols.Count == 0)
        {
            return symbols;
        }

        symbols[^1] += "</w>";
        while (symbols.Count > 1)
        {
            var best = -1;
            var bestRank = int.MaxValue;
            for (var i = 0; i < symbols.Count - 1; i++)
            {
                if (_ranks.TryGetValue((symbols[i], symbols[i + 1]), out var r) && r < bestRank)
                {
                    bestRank = r;
                    best = i;
                }
            }

            if (best < 0)
            {
                break;
            }

            // Merge every occurrence of the best pair, left to right.
            var (a, b) = (symbols[best], symbols[best + 1]);
            var merged = new List<string>(symbols.Count);
            for (var i = 0; i < symbols.Count; i++)
            {
                if (i < symbols.Count - 1 && symbols[i] == a && symbols[i + 1] == b)
                {
                    merged.Add(a + b);
                    i++;
                }
                else
                {
                    merged.Add(symbols[i]);
                }
            }

            symbols = merged;
        }

        return symbols;
    }

    /// <summary>GPT-2's reversible map from bytes to printable characters, which CLIP's vocabulary is written in.</summary>
    private static string[] BuildByteMap()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        var map = new string[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            map[b] = ((char)(printable.Contains(b) ? b : next++)).ToString();
        }

        return map;
    }

    /// <summary>The characters of the byte alphabet, for building vocabularies.</summary>
    public static IReadOnlyList<string> ByteAlphabet => ByteToUnicode;

    [GeneratedRegex(@"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
