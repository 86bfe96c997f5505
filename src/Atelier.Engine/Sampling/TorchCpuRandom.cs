namespace Atelier.Engine.Sampling;

/// <summary>
/// PyTorch's CPU generator as <c>torch.randn</c> draws from it, so that a seed gives the same noise as AUTOMATIC1111
/// with <c>randn_source</c> CPU (and A1111 on a machine without CUDA): a 32-bit Mersenne Twister (MT19937) seeded
/// with the seed's low 32 bits, and ATen's normal fill. A call of 16 values or more draws one float uniform
/// ((u &amp; 0xFFFFFF) / 2²⁴) per value, then turns each block of 16 into normals by Box–Muller over pairs (j, j + 8), and
/// redraws and refills the last 16 when the count is not a multiple of 16; a shorter call draws doubles (53 bits of
/// two 32-bit outputs) and Box–Muller pairs, keeping the second of a pair for the next value. Each <see cref="Fill"/> is
/// one <c>torch.randn</c> call, continuing the generator: as A1111 draws a picture's initial latent and then each
/// ancestral step's noise from the picture's own generator.
/// </summary>
public sealed class TorchCpuRandom : INoiseGenerator
{
    private const int N = 624;
    private const int M = 397;
    private readonly uint[] _state = new uint[N];
    private int _index;
    private double? _nextNormal;

    public TorchCpuRandom(long seed)
    {
        _state[0] = (uint)(seed & 0xFFFFFFFF);
        for (var i = 1; i < N; i++)
        {
            _state[i] = unchecked((1812433253u * (_state[i - 1] ^ (_state[i - 1] >> 30))) + (uint)i);
        }

        _index = N;
    }

    /// <summary>The generator's next 32-bit output (MT19937 with its standard tempering).</summary>
    public uint NextUInt32()
    {
        if (_index >= N)
        {
            for (var k = 0; k < N; k++)
            {
                var y = (_state[k] & 0x80000000u) | (_state[(k + 1) % N] & 0x7FFFFFFFu);
                _state[k] = _state[(k + M) % N] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908B0DFu : 0u);
            }

            _index = 0;
        }

        var v = _state[_index++];
        v ^= v >> 11;
        v ^= (v << 7) & 0x9D2C5680u;
        v ^= (v << 15) & 0xEFC60000u;
        v ^= v >> 18;
        return v;
    }

    /// <summary>Fills <paramref name="target"/> as <c>torch.randn(target.Length)</c> would, continuing the generator.</summary>
    public void Fill(Span<float> target)
    {
        var n = target.Length;
        if (n >= 16)
        {
            for (var i = 0; i < n; i++)
            {
                target[i] = UniformFloat();
            }

            for (var i = 0; i + 16 <= n; i += 16)
            {
                Normal16(target.Slice(i, 16));
            }

            if (n % 16 != 0)
            {
                var tail = target[(n - 16)..];
                for (var i = 0; i < 16; i++)
                {
                    tail[i] = UniformFloat();
                }

                Normal16(tail);
            }

            return;
        }

        for (var i = 0; i < n; i++)
        {
            if (_nextNormal is { } cached)
            {
                target[i] = (float)cached;
                _nextNormal = null;
                continue;
            }

            var u1 = UniformDouble();
            var u2 = UniformDouble();
            var r = Math.Sqrt(-2.0 * Math.Log(1.0 - u2));
            var theta = 2.0 * Math.PI * u1;
            _nextNormal = r * Math.Sin(theta);
            target[i] = (float)(r * Math.Cos(theta));
        }
    }

    private float UniformFloat() => (NextUInt32() & 0xFFFFFF) * (1.0f / (1 << 24));

    private double UniformDouble()
    {
        var hi = (ulong)NextUInt32();
        var lo = (ulong)NextUInt32();
        return (((hi << 32) | lo) & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));
    }

    private static void Normal16(Span<float> data)
    {
        for (var j = 0; j < 8; j++)
        {
            var u1 = 1 - data[j];
            var u2 = data[j + 8];
            var radius = MathF.Sqrt(-2 * MathF.Log(u1));
            var theta = 2.0f * MathF.PI * u2;
            data[j] = radius * MathF.Cos(theta);
            data[j + 8] = radius * MathF.Sin(theta);
        }
    }
}
