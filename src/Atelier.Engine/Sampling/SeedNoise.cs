namespace Atelier.Engine.Sampling;

/// <summary>
/// One image's noise as AUTOMATIC1111 draws it (its <c>ImageRNG</c>, with the generator of its <c>randn_source</c>): the seed's first draw
/// is the initial latent; a variation seed (<c>subseed</c>, <c>subseed_strength</c>) is blended in by A1111's slerp; with
/// <c>seed_resize_from_w/h</c> the noise is drawn at that size and pasted, centred, into the seed's noise at the target
/// size; the seed's generator then goes on giving the samplers' noise, or, with <c>eta_noise_seed_delta</c> (ENSD), a
/// fresh generator seeded with seed + ENSD does.
/// </summary>
public static class SeedNoise
{
    /// <summary>Fills <paramref name="latents"/> (4 × <paramref name="h"/> × <paramref name="w"/>) and returns the generator of the sampler's noise.</summary>
    public static INoiseGenerator First(Span<float> latents, int h, int w, long seed, long subseed = 0, double subseedStrength = 0,
        int resizeFromWidth = 0, int resizeFromHeight = 0, long etaNoiseSeedDelta = 0, Func<long, INoiseGenerator>? source = null)
    {
        var create = source ?? (s => new TorchCpuRandom(s));
        var resized = resizeFromWidth > 0 && resizeFromHeight > 0;
        var (nh, nw) = resized ? (resizeFromHeight / 8, resizeFromWidth / 8) : (h, w);
        var generator = create(seed);
        float[] noise;
        if (resized)
        {
            // randn(seed, noise_shape): the seed's first draw at the other size, from a generator of its own.
            noise = new float[4 * nh * nw];
            create(seed).Fill(noise);
        }
        else
        {
            generator.Fill(latents);
            noise = subseedStrength != 0 ? latents.ToArray() : [];
        }

        if (subseedStrength != 0)
        {
            var sub = new float[4 * nh * nw];
            create(subseed).Fill(sub);
            noise = Slerp((float)subseedStrength, noise, sub, nh, nw);
        }

        if (resized)
        {
            // The seed's own generator draws the full size; the resized noise is pasted over its centre (or cropped into it).
            generator.Fill(latents);
            var dx = (w - nw) / 2;
            var dy = (h - nh) / 2;
            var cw = dx >= 0 ? nw : nw + (2 * dx);
            var ch = dy >= 0 ? nh : nh + (2 * dy);
            var tx = Math.Max(dx, 0);
            var ty = Math.Max(dy, 0);
            var sx = Math.Max(-dx, 0);
            var sy = Math.Max(-dy, 0);
            for (var c = 0; c < 4; c++)
            {
                for (var y = 0; y < ch; y++)
                {
                    noise.AsSpan((c * nh * nw) + ((sy + y) * nw) + sx, cw).CopyTo(latents.Slice((c * h * w) + ((ty + y) * w) + tx, cw));
                }
            }
        }
        else if (subseedStrength != 0)
        {
            noise.CopyTo(latents);
        }

        return etaNoiseSeedDelta != 0 ? create(seed + etaNoiseSeedDelta) : generator;
    }

    /// <summary>
    /// A1111's slerp on one image's noise (channels × height × width), as written there: each (channel, column) vector
    /// along the height is normalized, and the angle between the two is taken per (channel, column); nearly parallel
    /// noises (mean cosine over 0.9995) are blended linearly as <c>low·val + high·(1 − val)</c>.
    /// </summary>
    public static float[] Slerp(float val, float[] low, float[] high, int h, int w)
    {
        var dots = new float[4 * w];
        var lowNorms = new float[4 * w];
        var highNorms = new float[4 * w];
        for (var c = 0; c < 4; c++)
        {
            for (var x = 0; x < w; x++)
            {
                float l2 = 0, h2 = 0;
                for (var y = 0; y < h; y++)
                {
                    var i = (c * h * w) + (y * w) + x;
                    l2 += low[i] * low[i];
                    h2 += high[i] * high[i];
                }

                lowNorms[(c * w) + x] = MathF.Sqrt(l2);
                highNorms[(c * w) + x] = MathF.Sqrt(h2);
            }
        }

        for (var c = 0; c < 4; c++)
        {
            for (var x = 0; x < w; x++)
            {
                float dot = 0;
                for (var y = 0; y < h; y++)
                {
                    var i = (c * h * w) + (y * w) + x;
                    dot += low[i] / lowNorms[(c * w) + x] * (high[i] / highNorms[(c * w) + x]);
                }

                dots[(c * w) + x] = dot;
            }
        }

        var result = new float[low.Length];
        if (dots.Average() > 0.9995f)
        {
            for (var i = 0; i < low.Length; i++)
            {
                result[i] = (low[i] * val) + (high[i] * (1 - val));
            }

            return result;
        }

        for (var c = 0; c < 4; c++)
        {
            for (var x = 0; x < w; x++)
            {
                var omega = MathF.Acos(dots[(c * w) + x]);
                var so = MathF.Sin(omega);
                var a = MathF.Sin((1 - val) * omega) / so;
                var b = MathF.Sin(val * omega) / so;
                for (var y = 0; y < h; y++)
                {
                    var i = (c * h * w) + (y * w) + x;
                    result[i] = (a * low[i]) + (b * high[i]);
                }
            }
        }

        return result;
    }
}
