namespace Atelier.Engine.Sampling;

/// <summary>
/// The model as a sampler sees it: given the latents x at noise level σ (in k-diffusion's σ space, where
/// x = x₀ + σ·ε), write the model's noise prediction ε into <paramref name="eps"/>.
/// </summary>
public delegate void Denoiser(ReadOnlySpan<float> x, double sigma, int step, Span<float> eps);

/// <summary>A noise source for ancestral samplers (fills a span with standard normal values).</summary>
public delegate void NoiseSource(Span<float> target);

/// <summary>A sampler, named as AUTOMATIC1111 names it. Buffers are allocated once per run, never per step.</summary>
public abstract class Sampler
{
    public abstract string Name { get; }

    /// <summary>What "Automatic" means for this sampler.</summary>
    public virtual string DefaultSchedule => "Normal";

    /// <summary>The σ list to sample over (high to low, ending at the final σ).</summary>
    public virtual double[] SigmasFor(string schedule, NoiseSchedule model, int steps) =>
        Schedules.Sigmas(schedule == "Automatic" ? DefaultSchedule : schedule, model, steps);

    /// <summary>Runs every step in place on <paramref name="x"/>; <paramref name="onStep"/> is told after each.</summary>
    public abstract void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct);

    public static IReadOnlyList<Sampler> All { get; } = [new Euler(), new EulerAncestral(), new DpmPp2M(), new Lms(), new Ddim()];

    /// <summary>Finds a sampler by its label or an A1111 alias (case-insensitive); null when unknown.</summary>
    public static Sampler? Find(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return All[0];
        }

        var n = name.Trim();
        return All.FirstOrDefault(s => string.Equals(s.Name, n, StringComparison.OrdinalIgnoreCase))
               ?? n.ToLowerInvariant() switch
               {
                   "k_euler" => All[0],
                   "k_euler_a" or "euler_a" or "euler_ancestral" => All[1],
                   "k_dpmpp_2m" or "dpmpp_2m" => All[2],
                   "k_lms" or "lms" => All[3],
                   "ddim" => All[4],
                   _ => null,
               };
    }

    /// <summary>The aliases A1111 lists for a sampler in <c>/sdapi/v1/samplers</c>.</summary>
    public static IReadOnlyList<string> AliasesOf(string name) => name switch
    {
        "Euler" => ["k_euler"],
        "Euler a" => ["k_euler_a", "k_euler_ancestral"],
        "DPM++ 2M" => ["k_dpmpp_2m"],
        "LMS" => ["k_lms"],
        _ => [],
    };

    /// <summary>Splits a legacy combined name ("DPM++ 2M Karras") into sampler and schedule, as A1111 does.</summary>
    public static (string Sampler, string? Schedule) SplitLegacy(string name)
    {
        foreach (var schedule in Schedules.Names.Where(s => s != "Automatic"))
        {
            if (name.EndsWith(" " + schedule, StringComparison.OrdinalIgnoreCase))
            {
                return (name[..^(schedule.Length + 1)], schedule);
            }
        }

        return (name, null);
    }
}

public sealed class Euler : Sampler
{
    public override string Name => "Euler";

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var eps = new float[x.Length];
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            model(x, sigmas[i], i, eps);
            var dt = (float)(sigmas[i + 1] - sigmas[i]);
            for (var j = 0; j < x.Length; j++)
            {
                x[j] += eps[j] * dt;
            }

            onStep?.Invoke(i);
        }
    }
}

/// <summary>Euler ancestral (k-diffusion's sample_euler_ancestral with η = 1).</summary>
public sealed class EulerAncestral : Sampler
{
    public override string Name => "Euler a";

    public static (double Up, double Down) AncestralStep(double from, double to)
    {
        if (to == 0)
        {
            return (0, 0);
        }

        var up = Math.Sqrt(to * to * ((from * from) - (to * to)) / (from * from));
        return (up, Math.Sqrt((to * to) - (up * up)));
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var eps = new float[x.Length];
        var fresh = new float[x.Length];
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            model(x, sigmas[i], i, eps);
            var (up, down) = AncestralStep(sigmas[i], sigmas[i + 1]);
            var dt = (float)(down - sigmas[i]);
            for (var j = 0; j < x.Length; j++)
            {
                x[j] += eps[j] * dt;
            }

            if (up > 0)
            {
                noise(fresh);
                for (var j = 0; j < x.Length; j++)
                {
                    x[j] += fresh[j] * (float)up;
                }
            }

            onStep?.Invoke(i);
        }
    }
}

/// <summary>DPM++ 2M (k-diffusion's sample_dpmpp_2m). Karras is its "Automatic" schedule in A1111.</summary>
public sealed class DpmPp2M : Sampler
{
    public override string Name => "DPM++ 2M";
    public override string DefaultSchedule => "Karras";

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var eps = new float[x.Length];
        var denoised = new float[x.Length];
        var previous = new float[x.Length];
        double? hPrev = null;
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            model(x, sigmas[i], i, eps);
            var s = sigmas[i];
            var next = sigmas[i + 1];
            for (var j = 0; j < x.Length; j++)
            {
                denoised[j] = (float)(x[j] - (s * eps[j]));
            }

            if (next == 0)
            {
                Array.Copy(denoised, x, x.Length);
            }
            else
            {
                var h = Math.Log(s) - Math.Log(next); // t = −ln σ, h = t_next − t
                var ratio = next / s;
                var coeff = 1 - Math.Exp(-h); // −expm1(−h); h is never tiny enough here for the direct form to lose digits
                if (hPrev is null)
                {
                    for (var j = 0; j < x.Length; j++)
                    {
                        x[j] = (float)((ratio * x[j]) + (coeff * denoised[j]));
                    }
                }
                else
                {
                    var r = hPrev.Value / h;
                    var a = 1 + (1 / (2 * r));
                    var b = 1 / (2 * r);
                    for (var j = 0; j < x.Length; j++)
                    {
                        var d = (a * denoised[j]) - (b * previous[j]);
                        x[j] = (float)((ratio * x[j]) + (coeff * d));
                    }
                }

                hPrev = h;
            }

            (previous, denoised) = (denoised, previous);
            onStep?.Invoke(i);
        }
    }
}

/// <summary>Linear multistep (k-diffusion's sample_lms, order 4), coefficients by quadrature of the Lagrange basis.</summary>
public sealed class Lms : Sampler
{
    private const int Order = 4;

    public override string Name => "LMS";

    public static double Coefficient(int order, double[] sigmas, int i, int j)
    {
        double Basis(double tau)
        {
            double product = 1;
            for (var k = 0; k < order; k++)
            {
                if (k != j)
                {
                    product *= (tau - sigmas[i - k]) / (sigmas[i - j] - sigmas[i - k]);
                }
            }

            return product;
        }

        // Composite Simpson over [σ_i, σ_{i+1}]: exact for polynomials up to degree 3, which is what order 4 needs.
        const int intervals = 64;
        var a = sigmas[i];
        var b = sigmas[i + 1];
        var width = (b - a) / intervals;
        var sum = Basis(a) + Basis(b);
        for (var k = 1; k < intervals; k++)
        {
            sum += (k % 2 == 1 ? 4 : 2) * Basis(a + (k * width));
        }

        return sum * width / 3;
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var history = new List<float[]>(Order);
        var pool = new Stack<float[]>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            var eps = pool.Count > 0 ? pool.Pop() : new float[x.Length];
            model(x, sigmas[i], i, eps);
            history.Insert(0, eps);
            if (history.Count > Order)
            {
                pool.Push(history[^1]);
                history.RemoveAt(history.Count - 1);
            }

            var order = Math.Min(i + 1, Order);
            for (var k = 0; k < order; k++)
            {
                var c = (float)Coefficient(order, sigmas, i, k);
                var d = history[k];
                for (var j = 0; j < x.Length; j++)
                {
                    x[j] += c * d[j];
                }
            }

            onStep?.Invoke(i);
        }
    }
}

/// <summary>
/// DDIM with η = 0 (diffusers' scheduling_ddim, "leading" timesteps with offset 1, final ᾱ = ᾱ₀). In σ space it is
/// an Euler step over the σ of those timesteps, ending at σ(0) instead of 0; the pipeline rescales the result.
/// </summary>
public sealed class Ddim : Sampler
{
    public override string Name => "DDIM";

    public override double[] SigmasFor(string schedule, NoiseSchedule model, int steps)
    {
        var stride = model.TrainSteps / steps;
        var sigmas = new double[steps + 1];
        for (var i = 0; i < steps; i++)
        {
            sigmas[i] = model.Sigmas[((steps - 1 - i) * stride) + 1];
        }

        sigmas[steps] = model.Sigmas[0];
        return sigmas;
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct) =>
        All[0].Run(x, sigmas, model, noise, onStep, ct);
}
