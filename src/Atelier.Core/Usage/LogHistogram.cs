using System.Globalization;
using System.Text;

namespace Atelier.Core.Usage;

/// <summary>
/// A fixed log-scale histogram of durations in milliseconds: four bins per doubling (a bin spans 19 %, so a percentile
/// read from it is within about 10 % of the true one), bin 0 for anything under a millisecond. Stored sparse,
/// <c>bin:count</c> joined by <c>;</c>, so a minute with a few jobs takes a few bytes; histograms add bin by bin.
/// </summary>
public static class LogHistogram
{
    private const int BinsPerDoubling = 4;

    /// <summary>The last bin: about 2^31 ms (24 days); anything longer falls into it.</summary>
    public const int MaxBin = 31 * BinsPerDoubling;

    public static int BinOf(double ms) =>
        ms < 1 ? 0 : Math.Min(MaxBin, 1 + (int)Math.Floor(Math.Log2(ms) * BinsPerDoubling));

    /// <summary>The value a bin stands for: the geometric middle of its span (0 for bin 0).</summary>
    public static double ValueOf(int bin) => bin == 0 ? 0 : Math.Round(Math.Pow(2, (bin - 1 + 0.5) / BinsPerDoubling), 1);

    public static void Add(SortedDictionary<int, long> bins, double ms, long count = 1) =>
        bins[BinOf(ms)] = bins.GetValueOrDefault(BinOf(ms)) + count;

    public static string Format(SortedDictionary<int, long> bins)
    {
        var sb = new StringBuilder();
        foreach (var (bin, count) in bins)
        {
            sb.Append(sb.Length == 0 ? "" : ";").Append(bin.ToString(CultureInfo.InvariantCulture)).Append(':').Append(count.ToString(CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }

    /// <summary>Adds a stored histogram into <paramref name="into"/>; a malformed entry is skipped.</summary>
    public static void Merge(SortedDictionary<int, long> into, string? stored)
    {
        foreach (var part in (stored ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = part.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && int.TryParse(part.AsSpan(0, colon), CultureInfo.InvariantCulture, out var bin)
                && long.TryParse(part.AsSpan(colon + 1), CultureInfo.InvariantCulture, out var count))
            {
                into[bin] = into.GetValueOrDefault(bin) + count;
            }
        }
    }

    /// <summary>The value under which <paramref name="q"/> of the samples fall (0 when there are none).</summary>
    public static double Percentile(SortedDictionary<int, long> bins, double q)
    {
        var total = bins.Values.Sum();
        if (total == 0)
        {
            return 0;
        }

        var rank = (long)Math.Ceiling(q * total);
        long seen = 0;
        foreach (var (bin, count) in bins)
        {
            seen += count;
            if (seen >= rank)
            {
                return ValueOf(bin);
            }
        }

        return ValueOf(bins.Keys.Last());
    }
}
