namespace Atelier.Engine.Sampling;

/// <summary>A seeded source of standard normal noise; each <see cref="Fill"/> is one <c>randn</c> call of that many values.</summary>
public interface INoiseGenerator
{
    void Fill(Span<float> target);
}

/// <summary>
/// AUTOMATIC1111's "NV" generator (its <c>rng_philox</c>), which gives what <c>torch.randn</c> gives on an NVIDIA GPU,
/// on any machine: value i of the n-th call is Philox-4×32 with 10 rounds over the counter (n, 0, i, 0) and the key
/// (the seed's low and high 32 bits), of which the first two words go through Box–Muller (the first output only),
/// in double precision over float32 constants, then rounded to float32.
/// </summary>
public sealed class PhiloxRandom(long seed) : INoiseGenerator
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;
    private static readonly double TwoPow32Inv = (float)2.3283064e-10;
    private static readonly double TwoPow32Inv2Pi = (float)(2.3283064e-10 * 6.2831855);
    private uint _offset;

    public void Fill(Span<float> target)
    {
        var key0 = (uint)((ulong)seed & 0xFFFFFFFF);
        var key1 = (uint)((ulong)seed >> 32);
        for (var i = 0; i < target.Length; i++)
        {
            uint c0 = _offset, c1 = 0, c2 = (uint)i, c3 = 0, k0 = key0, k1 = key1;
            for (var round = 0; round < 10; round++)
            {
                var p0 = (ulong)c0 * M0;
                var p1 = (ulong)c2 * M1;
                (c0, c1, c2, c3) = ((uint)(p1 >> 32) ^ c1 ^ k0, (uint)p1, (uint)(p0 >> 32) ^ c3 ^ k1, (uint)p0);
                unchecked
                {
                    k0 += W0;
                    k1 += W1;
                }
            }

            var u = (c0 * TwoPow32Inv) + (TwoPow32Inv / 2);
            var v = (c1 * TwoPow32Inv2Pi) + (TwoPow32Inv2Pi / 2);
            target[i] = (float)(Math.Sqrt(-2.0 * Math.Log(u)) * Math.Sin(v));
        }

        _offset++;
    }
}

/// <summary>A1111's <c>randn_source</c>: <c>CPU</c> (PyTorch's CPU generator), <c>NV</c> or <c>GPU</c> (what an NVIDIA GPU gives, on any machine).</summary>
public static class NoiseSources
{
    public const string Gpu = "GPU", Cpu = "CPU", Nv = "NV";

    public static bool IsKnown(string? source) => source?.ToUpperInvariant() is Gpu or Cpu or Nv;

    /// <summary>The generator for a seed under <paramref name="source"/> (anything but CPU draws as an NVIDIA GPU does).</summary>
    public static Func<long, INoiseGenerator> For(string? source) =>
        string.Equals(source, Cpu, StringComparison.OrdinalIgnoreCase) ? seed => new TorchCpuRandom(seed) : seed => new PhiloxRandom(seed);
}
