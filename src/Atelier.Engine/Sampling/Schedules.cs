namespace Atelier.Engine.Sampling;

/// <summary>One σ schedule as AUTOMATIC1111 lists it in <c>/sdapi/v1/schedulers</c>.</summary>
public sealed record ScheduleInfo(string Name, string Label, double? DefaultRho, bool NeedInnerModel, IReadOnlyList<string> Aliases);

/// <summary>
/// The σ schedules of a sampling run, named as AUTOMATIC1111 (1.10) names them, each from its published formula:
/// k-diffusion's (Karras, exponential, polyexponential), the discrete-schedule ones of A1111's <c>sd_schedulers.py</c>
/// (uniform/normal, SGM uniform, simple, DDIM), KL-optimal (Dhariwal and Nichol style arctan spacing), Align Your Steps
/// (NVIDIA's SD 1.5 list, log-linearly interpolated) and Beta (Lee et al. 2024, arXiv:2407.12173; α = β = 0.6).
/// </summary>
public static class Schedules
{
    public static readonly IReadOnlyList<ScheduleInfo> All =
    [
        new("automatic", "Automatic", null, false, []),
        new("uniform", "Uniform", null, true, []),
        new("karras", "Karras", 7.0, false, []),
        new("exponential", "Exponential", null, false, []),
        new("polyexponential", "Polyexponential", 1.0, false, []),
        new("sgm_uniform", "SGM Uniform", null, true, ["SGMUniform"]),
        new("kl_optimal", "KL Optimal", null, false, []),
        new("align_your_steps", "Align Your Steps", null, false, []),
        new("simple", "Simple", null, true, []),
        new("normal", "Normal", null, true, []),
        new("ddim", "DDIM", null, true, []),
        new("beta", "Beta", null, true, []),
    ];

    /// <summary>The labels, as requests name them (a name or an alias is accepted too: <see cref="Canonical"/>).</summary>
    public static readonly string[] Names = [.. All.Select(s => s.Label)];

    /// <summary>NVIDIA's Align Your Steps σ list for SD 1.5 (10 steps), from its how-to page.</summary>
    public static readonly double[] AlignYourStepsSd15 = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029];

    /// <summary>The Beta schedule's distribution parameters (A1111's options <c>beta_dist_alpha</c>, <c>beta_dist_beta</c> defaults).</summary>
    public const double BetaAlpha = 0.6;

    public const double BetaBeta = 0.6;

    /// <summary>The label of a schedule named by its label, name or alias (any case); null when unknown.</summary>
    public static string? Canonical(string? schedule)
    {
        if (string.IsNullOrWhiteSpace(schedule))
        {
            return "Automatic";
        }

        var s = schedule.Trim();
        return All.FirstOrDefault(i => string.Equals(i.Label, s, StringComparison.OrdinalIgnoreCase) || string.Equals(i.Name, s, StringComparison.OrdinalIgnoreCase)
                                       || i.Aliases.Any(a => string.Equals(a, s, StringComparison.OrdinalIgnoreCase)))?.Label;
    }

    /// <summary>
    /// n σ values from high to low, then a final 0 (KL Optimal ends at σ_min instead, as A1111's does). "Normal" and
    /// "Uniform" (and "Automatic" for Euler, Euler a, LMS) are the model's discrete schedule at timesteps linspace(999,
    /// 0, n), interpolated in log σ; "Karras" is the ρ = 7 schedule between the model's σ_min and σ_max.
    /// </summary>
    public static double[] Sigmas(string schedule, NoiseSchedule model, int steps) => (Canonical(schedule) ?? schedule) switch
    {
        "Karras" => Karras(model.SigmaMin, model.SigmaMax, steps),
        "Normal" or "Uniform" or "Automatic" => Normal(model, steps),
        "Exponential" => Exponential(model.SigmaMin, model.SigmaMax, steps),
        "Polyexponential" => Polyexponential(model.SigmaMin, model.SigmaMax, steps, 1.0),
        "SGM Uniform" => SgmUniform(model, steps),
        "KL Optimal" => KlOptimal(model.SigmaMin, model.SigmaMax, steps),
        "Align Your Steps" => AlignYourSteps(steps),
        "Simple" => Simple(model, steps),
        "DDIM" => DdimUniform(model, steps),
        "Beta" => Beta(model.SigmaMin, model.SigmaMax, steps, BetaAlpha, BetaBeta),
        _ => throw new ArgumentException($"Unknown schedule '{schedule}'. Known: {string.Join(", ", Names)}.", nameof(schedule)),
    };

    public static double[] Normal(NoiseSchedule model, int steps) => Discrete(model, steps, model.SigmaAtLog);

    public static double[] Karras(double sigmaMin, double sigmaMax, int steps, double rho = 7)
    {
        var sigmas = new double[steps + 1];
        var minInv = Math.Pow(sigmaMin, 1 / rho);
        var maxInv = Math.Pow(sigmaMax, 1 / rho);
        for (var i = 0; i < steps; i++)
        {
            var ramp = steps == 1 ? 0 : (double)i / (steps - 1);
            sigmas[i] = Math.Pow(maxInv + (ramp * (minInv - maxInv)), rho);
        }

        return sigmas;
    }

    /// <summary>k-diffusion's <c>get_sigmas_exponential</c>: exp(linspace(ln σ_max, ln σ_min, n)), then 0.</summary>
    public static double[] Exponential(double sigmaMin, double sigmaMax, int steps) => Polyexponential(sigmaMin, sigmaMax, steps, 1.0);

    /// <summary>k-diffusion's <c>get_sigmas_polyexponential</c>: exp(ramp^ρ·(ln σ_max − ln σ_min) + ln σ_min), ramp = linspace(1, 0, n); then 0.</summary>
    public static double[] Polyexponential(double sigmaMin, double sigmaMax, int steps, double rho)
    {
        var sigmas = new double[steps + 1];
        for (var i = 0; i < steps; i++)
        {
            var ramp = Math.Pow(steps == 1 ? 1 : 1 - ((double)i / (steps - 1)), rho);
            sigmas[i] = Math.Exp((ramp * (Math.Log(sigmaMax) - Math.Log(sigmaMin))) + Math.Log(sigmaMin));
        }

        return sigmas;
    }

    /// <summary>A1111's <c>sgm_uniform</c>: σ at timesteps linspace(999, 0, n + 1) without the last, then 0.</summary>
    public static double[] SgmUniform(NoiseSchedule model, int steps)
    {
        var sigmas = new double[steps + 1];
        var start = model.TrainSteps - 1;
        for (var i = 0; i < steps; i++)
        {
            sigmas[i] = model.SigmaAtLog(start * (1 - ((double)i / steps)));
        }

        return sigmas;
    }

    /// <summary>A1111's <c>kl_optimal</c>: tan((i/n)·atan σ_min + (1 − i/n)·atan σ_max) for i = 0…n (ends at σ_min, no 0).</summary>
    public static double[] KlOptimal(double sigmaMin, double sigmaMax, int steps)
    {
        var sigmas = new double[steps + 1];
        var aMin = Math.Atan(sigmaMin);
        var aMax = Math.Atan(sigmaMax);
        for (var i = 0; i <= steps; i++)
        {
            var f = (double)i / steps;
            sigmas[i] = Math.Tan((f * aMin) + ((1 - f) * aMax));
        }

        return sigmas;
    }

    /// <summary>Align Your Steps (SD 1.5): the 10-step list itself, or log-linearly interpolated to n steps; then 0.</summary>
    public static double[] AlignYourSteps(int steps)
    {
        var list = AlignYourStepsSd15;
        var sigmas = new double[steps + 1];
        if (steps == list.Length)
        {
            list.CopyTo(sigmas, 0);
            return sigmas;
        }

        // Interpolate log σ over [0, 1] in ascending order (the list reversed), then reverse back.
        var ys = Enumerable.Reverse(list).Select(v => Math.Log(v)).ToArray();
        for (var i = 0; i < steps; i++)
        {
            var x = steps == 1 ? 0 : (double)i / (steps - 1);
            var pos = x * (ys.Length - 1);
            var lo = Math.Min((int)Math.Floor(pos), ys.Length - 2);
            var w = pos - lo;
            sigmas[steps - 1 - i] = Math.Exp((ys[lo] * (1 - w)) + (ys[lo + 1] * w));
        }

        return sigmas;
    }

    /// <summary>A1111's <c>simple_scheduler</c>: the model's σ table read from the top every 1000/n entries (truncated), then 0.</summary>
    public static double[] Simple(NoiseSchedule model, int steps)
    {
        var sigmas = new double[steps + 1];
        var stride = (double)model.TrainSteps / steps;
        for (var i = 0; i < steps; i++)
        {
            sigmas[i] = model.Sigmas[model.TrainSteps - 1 - (int)(i * stride)];
        }

        return sigmas;
    }

    /// <summary>A1111's <c>ddim_scheduler</c>: the σ table at 1, 1 + s, 1 + 2s, … (s = max(1000 div n, 1)), high to low, then 0.</summary>
    public static double[] DdimUniform(NoiseSchedule model, int steps)
    {
        var stride = Math.Max(model.TrainSteps / steps, 1);
        var picked = new List<double>();
        for (var x = 1; x < model.TrainSteps; x += stride)
        {
            picked.Add(model.Sigmas[x]);
        }

        picked.Reverse();
        picked.Add(0);
        return [.. picked];
    }

    /// <summary>
    /// The Beta schedule: σ_min + ppf(1 − i/(n − 1))·(σ_max − σ_min) for i = 0…n − 1, ppf the Beta(α, β)
    /// distribution's quantile function; then 0.
    /// </summary>
    public static double[] Beta(double sigmaMin, double sigmaMax, int steps, double alpha, double beta)
    {
        var sigmas = new double[steps + 1];
        for (var i = 0; i < steps; i++)
        {
            var q = steps == 1 ? 1 : 1 - ((double)i / (steps - 1));
            sigmas[i] = sigmaMin + (BetaQuantile(q, alpha, beta) * (sigmaMax - sigmaMin));
        }

        return sigmas;
    }

    /// <summary>The quantile of the Beta(a, b) distribution: the x in [0, 1] whose regularized incomplete beta is p (bisection to 1e-15).</summary>
    public static double BetaQuantile(double p, double a, double b)
    {
        if (p <= 0)
        {
            return 0;
        }

        if (p >= 1)
        {
            return 1;
        }

        double lo = 0, hi = 1;
        for (var i = 0; i < 200 && hi - lo > 1e-15; i++)
        {
            var mid = (lo + hi) / 2;
            if (RegularizedIncompleteBeta(mid, a, b) < p)
            {
                lo = mid;
            }
            else
            {
                hi = mid;
            }
        }

        return (lo + hi) / 2;
    }

    /// <summary>I_x(a, b), by its continued fraction (Lentz's method), using the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where it converges faster.</summary>
    public static double RegularizedIncompleteBeta(double x, double a, double b)
    {
        if (x <= 0)
        {
            return 0;
        }

        if (x >= 1)
        {
            return 1;
        }

        var logFront = LogGamma(a + b) - LogGamma(a) - LogGamma(b) + (a * Math.Log(x)) + (b * Math.Log(1 - x));
        return x < (a + 1) / (a + b + 2)
            ? Math.Exp(logFront) * ContinuedFraction(x, a, b) / a
            : 1 - (Math.Exp(logFront) * ContinuedFraction(1 - x, b, a) / b);
    }

    private static double ContinuedFraction(double x, double a, double b)
    {
        const double tiny = 1e-300;
        double c = 1, d = 1 - ((a + b) * x / (a + 1));
        d = 1 / (Math.Abs(d) < tiny ? tiny : d);
        var h = d;
        for (var m = 1; m <= 1000; m++)
        {
            var m2 = 2 * m;
            var even = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
            d = 1 + (even * d);
            d = 1 / (Math.Abs(d) < tiny ? tiny : d);
            c = 1 + (even / c);
            c = Math.Abs(c) < tiny ? tiny : c;
            h *= d * c;
            var odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
            d = 1 + (odd * d);
            d = 1 / (Math.Abs(d) < tiny ? tiny : d);
            c = 1 + (odd / c);
            c = Math.Abs(c) < tiny ? tiny : c;
            var delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < 1e-16)
            {
                break;
            }
        }

        return h;
    }

    /// <summary>ln Γ(x) for x &gt; 0 (Lanczos, g = 7, n = 9; about 15 digits).</summary>
    private static double LogGamma(double x)
    {
        double[] g = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
        if (x < 0.5)
        {
            return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        }

        x -= 1;
        var sum = g[0];
        for (var i = 1; i < 9; i++)
        {
            sum += g[i] / (x + i);
        }

        var t = x + 7.5;
        return (0.5 * Math.Log(2 * Math.PI)) + ((x + 0.5) * Math.Log(t)) - t + Math.Log(sum);
    }

    /// <summary>diffusers' Euler sigmas: timesteps linspace(999, 0, n), σ interpolated linearly.</summary>
    public static double[] DiffusersLinspace(NoiseSchedule model, int steps) => Discrete(model, steps, model.SigmaAtLinear);

    /// <summary>σ at timesteps linspace(999, 0, n) of the model's discrete schedule, then 0.</summary>
    private static double[] Discrete(NoiseSchedule model, int steps, Func<double, double> sigmaAt)
    {
        var sigmas = new double[steps + 1];
        for (var i = 0; i < steps; i++)
        {
            var t = steps == 1 ? model.TrainSteps - 1 : (model.TrainSteps - 1) * (1 - ((double)i / (steps - 1)));
            sigmas[i] = sigmaAt(t);
        }

        return sigmas;
    }
}
