namespace Atelier.Engine.Sampling;

/// <summary>
/// The model as a sampler sees it: given the latents x at noise level σ (in k-diffusion's σ space, where
/// x = x₀ + σ·ε), write the model's noise prediction ε into <paramref name="eps"/>.
/// </summary>
public delegate void Denoiser(ReadOnlySpan<float> x, double sigma, int step, Span<float> eps);

/// <summary>
/// The model as a CFG++ sampler sees it: <see cref="Denoiser"/>'s guided ε, and the unconditional prediction beside it
/// in <paramref name="uncond"/> (the guided ε again when the request has no guidance).
/// </summary>
public delegate void GuidedDenoiser(ReadOnlySpan<float> x, double sigma, int step, Span<float> eps, Span<float> uncond);

/// <summary>A noise source for ancestral samplers (fills a span with standard normal values).</summary>
public delegate void NoiseSource(Span<float> target);

/// <summary>
/// One model call of a sampler and the linear update after it. The model runs at σ = <see cref="Sigma"/> on the point
/// p (the step's latents x, or the point the step's previous stage made) and predicts ε; with x₀ = p − σ·ε and h the
/// previous stage's x₀ (the previous step's, across steps), the stage makes y = X·x + Eps·ε + Denoised·x₀ +
/// Previous·h + Point·p + Noise·(fresh standard normal noise). A stage that <see cref="EndsStep"/> makes y the step's new
/// latents; another makes y the point of the step's next stage. Fresh noise is drawn for a stage exactly when
/// <see cref="Noise"/> is not 0, after its model call, in the order the sampler's <see cref="Sampler.Run"/> draws it.
/// </summary>
public readonly record struct LinearStep(double Sigma, double X = 0, double Eps = 0, double Denoised = 0, double Previous = 0, double Point = 0,
    double Noise = 0, bool EndsStep = true);

/// <summary>A sampler, named as AUTOMATIC1111 names it. Buffers are allocated once per run, never per step.</summary>
public abstract class Sampler
{
    public abstract string Name { get; }

    /// <summary>What "Automatic" means for this sampler.</summary>
    public virtual string DefaultSchedule => "Normal";

    /// <summary>Whether A1111 draws this sampler's noise from the image's generator, which <c>eta_noise_seed_delta</c> reseeds (its <c>uses_ensd</c>).</summary>
    public virtual bool UsesEnsd => false;

    /// <summary>The σ list to sample over (high to low, ending at the final σ).</summary>
    public virtual double[] SigmasFor(string schedule, NoiseSchedule model, int steps) =>
        Schedules.Sigmas(schedule == "Automatic" ? DefaultSchedule : schedule, model, steps);

    /// <summary>
    /// Whether A1111 runs it on timesteps (CompVis's DDIM and PLMS): the initial latent is unit noise in the model's
    /// variance-preserving space, which is √(σ₀² + 1) times the noise here rather than σ₀ times.
    /// </summary>
    public virtual bool StartsFromUnitNoise => false;

    /// <summary>
    /// img2img's σ list (and the hires fix's second pass): A1111's sample_img2img runs the last t_enc + 1 steps of the
    /// schedule for <paramref name="steps"/>; the first σ is the noise the picture's latents get.
    /// </summary>
    public virtual double[] Img2ImgSigmas(double[] all, NoiseSchedule model, int steps, int tEnc) => all[Math.Clamp(steps - tEnc - 1, 0, steps - 1)..];

    /// <summary>The σ the latents are at after step <paramref name="step"/> (where a skipped pass stops).</summary>
    public virtual double SigmaAfterStep(double[] sigmas, int step) => sigmas[Math.Min(step + 1, sigmas.Length - 1)];

    /// <summary>How many steps (progress events) <see cref="Run"/> takes over <paramref name="sigmas"/>.</summary>
    public virtual int StepsOver(double[] sigmas) => sigmas.Length - 1;

    /// <summary>
    /// This sampler's steps as model calls each followed by a linear update (one or two stages a step), or null when it
    /// has none (it needs more history than the previous prediction). With a plan the pipeline keeps the latents on the
    /// device between steps; <see cref="Run"/> stays the reference the plan is checked against.
    /// </summary>
    public virtual LinearStep[]? LinearPlan(double[] sigmas) => null;

    /// <summary>Runs every step in place on <paramref name="x"/>; <paramref name="onStep"/> is told after each.</summary>
    public abstract void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct);

    /// <summary>Whether it reads the unconditional prediction (A1111's CFG++ samplers): then the pipeline calls <see cref="RunGuided"/>.</summary>
    public virtual bool NeedsUnconditional => false;

    /// <summary>What the request's guidance scale is multiplied by for this sampler (A1111's <c>cond_scale_miltiplier</c>: 1/12.5 for CFG++).</summary>
    public virtual double GuidanceScaleFactor => 1;

    /// <summary>Runs with the unconditional prediction at hand; a sampler that does not read it runs as <see cref="Run"/>.</summary>
    public virtual void RunGuided(float[] x, double[] sigmas, GuidedDenoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var uncond = new float[x.Length];
        Run(x, sigmas, (xs, sigma, step, eps) => model(xs, sigma, step, eps, uncond), noise, onStep, ct);
    }

    public static IReadOnlyList<Sampler> All { get; } =
    [
        new Euler(), new EulerAncestral(), new DpmPp2M(), new Lms(), new Ddim(), new Heun(), new Dpm2(), new Dpm2Ancestral(),
        new DpmPp2SAncestral(), new DpmPp2MSde(), new DpmPp3MSde(), new Lcm(), new DpmPpSde(), new Restart(), new Plms(), new DpmFast(), new DpmAdaptive(),
        new DdimCfgPp(), new UniPc(),
    ];

    /// <summary>What the model takes <paramref name="x"/> to at σ: x − σ·ε.</summary>
    protected static void Denoised(ReadOnlySpan<float> x, double sigma, ReadOnlySpan<float> eps, Span<float> denoised)
    {
        for (var j = 0; j < x.Length; j++)
        {
            denoised[j] = (float)(x[j] - (sigma * eps[j]));
        }
    }

    /// <summary>x += scale·v, element by element.</summary>
    protected static void AddScaled(Span<float> x, ReadOnlySpan<float> v, double scale)
    {
        for (var j = 0; j < x.Length; j++)
        {
            x[j] += (float)(v[j] * scale);
        }
    }

    /// <summary>x += σ·(fresh standard normal noise).</summary>
    protected static void AddNoise(Span<float> x, float[] fresh, NoiseSource noise, double sigma)
    {
        noise(fresh);
        AddScaled(x, fresh, sigma);
    }

    /// <summary>A1111's <c>discard_next_to_last_sigma</c>: the schedule for one step more, without its next-to-last σ.</summary>
    protected static double[] DiscardNextToLast(double[] sigmas) => sigmas.Length < 3 ? sigmas : [.. sigmas[..^2], sigmas[^1]];

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
                   "k_heun" or "heun" => All[5],
                   "k_dpm_2" or "dpm2" => All[6],
                   "k_dpm_2_a" or "dpm2_a" => All[7],
                   "k_dpmpp_2s_a" or "dpmpp_2s_a" or "dpmpp_2s_ancestral" => All[8],
                   "k_dpmpp_2m_sde" or "dpmpp_2m_sde" => All[9],
                   "k_dpmpp_3m_sde" or "dpmpp_3m_sde" => All[10],
                   "k_lcm" or "lcm" => All[11],
                   "k_dpmpp_sde" or "dpmpp_sde" => All[12],
                   "restart" => All[13],
                   "plms" => All[14],
                   "k_dpm_fast" or "dpm_fast" => All[15],
                   "k_dpm_ad" or "dpm_adaptive" => All[16],
                   "ddim_cfgpp" => All[17],
                   "unipc" => All[18],
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
        "Heun" => ["k_heun"],
        "DPM2" => ["k_dpm_2"],
        "DPM2 a" => ["k_dpm_2_a"],
        "DPM++ 2S a" => ["k_dpmpp_2s_a"],
        "DPM++ 2M SDE" => ["k_dpmpp_2m_sde"],
        "DPM++ 3M SDE" => ["k_dpmpp_3m_sde"],
        "LCM" => ["k_lcm"],
        "DPM++ SDE" => ["k_dpmpp_sde"],
        "Restart" => ["restart"],
        "PLMS" => ["plms"],
        "DPM fast" => ["k_dpm_fast"],
        "DPM adaptive" => ["k_dpm_ad"],
        "DDIM CFG++" => ["ddim_cfgpp"],
        "UniPC" => ["unipc"],
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

    public override LinearStep[] LinearPlan(double[] sigmas) =>
        [.. Enumerable.Range(0, sigmas.Length - 1).Select(i => new LinearStep(sigmas[i], X: 1, Eps: (float)(sigmas[i + 1] - sigmas[i])))];

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
    public override bool UsesEnsd => true;

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

    public override LinearStep[] LinearPlan(double[] sigmas) =>
    [
        .. Enumerable.Range(0, sigmas.Length - 1).Select(i =>
        {
            var (up, down) = AncestralStep(sigmas[i], sigmas[i + 1]);
            return new LinearStep(sigmas[i], X: 1, Eps: (float)(down - sigmas[i]), Noise: up > 0 ? (float)up : 0);
        }),
    ];

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

    public override LinearStep[] LinearPlan(double[] sigmas)
    {
        var plan = new LinearStep[sigmas.Length - 1];
        double? hPrev = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var (s, next) = (sigmas[i], sigmas[i + 1]);
            if (next == 0)
            {
                plan[i] = new LinearStep(s, Denoised: 1);
                continue;
            }

            var h = Math.Log(s) - Math.Log(next);
            var coeff = 1 - Math.Exp(-h);
            if (hPrev is null)
            {
                plan[i] = new LinearStep(s, X: next / s, Denoised: coeff);
            }
            else
            {
                var r = hPrev.Value / h;
                plan[i] = new LinearStep(s, X: next / s, Denoised: coeff * (1 + (1 / (2 * r))), Previous: -coeff / (2 * r));
            }

            hPrev = h;
        }

        return plan;
    }

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

    public override bool StartsFromUnitNoise => true;

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

    public override LinearStep[] LinearPlan(double[] sigmas) => All[0].LinearPlan(sigmas)!;

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct) =>
        All[0].Run(x, sigmas, model, noise, onStep, ct);
}

/// <summary>
/// DDIM CFG++ (A1111's ddim_cfgpp, after Chung et al. 2024, "CFG++: Manifold-constrained Classifier Free Guidance for
/// Diffusion Models"): DDIM over the same timesteps, the guided prediction giving x₀ but the unconditional one leading
/// to the next step (x′ = x₀ + σ′·ε_uncond in σ space, η = 0), the guidance scale divided by 12.5 so A1111's 0–12.5
/// maps to CFG++'s 0–1.
/// </summary>
public sealed class DdimCfgPp : Sampler
{
    public override string Name => "DDIM CFG++";
    public override bool StartsFromUnitNoise => true;
    public override bool NeedsUnconditional => true;
    public override double GuidanceScaleFactor => 1 / 12.5;

    public override double[] SigmasFor(string schedule, NoiseSchedule model, int steps) => All[4].SigmasFor(schedule, model, steps);

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct) =>
        RunGuided(x, sigmas, (xs, sigma, step, eps, uncond) =>
        {
            model(xs, sigma, step, eps);
            eps.CopyTo(uncond);
        }, noise, onStep, ct);

    public override void RunGuided(float[] x, double[] sigmas, GuidedDenoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var eps = new float[x.Length];
        var uncond = new float[x.Length];
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            var (sigma, next) = (sigmas[i], sigmas[i + 1]);
            model(x, sigma, i, eps, uncond);
            for (var j = 0; j < x.Length; j++)
            {
                x[j] = (float)(x[j] - (sigma * eps[j]) + (next * uncond[j]));
            }

            onStep?.Invoke(i);
        }
    }
}

/// <summary>Heun's method (k-diffusion's sample_heun, no churn): an Euler step, corrected by the slope at its end; Euler on the last step to 0.</summary>
public sealed class Heun : Sampler
{
    public override string Name => "Heun";

    public override LinearStep[] LinearPlan(double[] sigmas)
    {
        var plan = new List<LinearStep>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            Stages(plan, sigmas[i], sigmas[i + 1]);
        }

        return [.. plan];
    }

    /// <summary>
    /// Heun's step from σ to <paramref name="to"/> as stages: the Euler point, then x + (ε₁ + ε₂)/2·dt with ε₁ read back
    /// from the first stage's x₀ (ε₁ = (x − x₀)/σ); Euler alone into σ = 0. <paramref name="noiseAfter"/> is added to the result.
    /// </summary>
    internal static void Stages(List<LinearStep> plan, double from, double to, double noiseAfter = 0)
    {
        var dt = to - from;
        if (to == 0)
        {
            plan.Add(new LinearStep(from, X: 1, Eps: dt, Noise: noiseAfter));
            return;
        }

        plan.Add(new LinearStep(from, X: 1, Eps: dt, EndsStep: false));
        plan.Add(new LinearStep(to, X: 1 + (dt / (2 * from)), Eps: dt / 2, Previous: -dt / (2 * from), Noise: noiseAfter));
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var d = new float[x.Length];
        var d2 = new float[x.Length];
        var x2 = new float[x.Length];
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            model(x, sigmas[i], i, d);
            var dt = sigmas[i + 1] - sigmas[i];
            if (sigmas[i + 1] == 0)
            {
                AddScaled(x, d, dt);
            }
            else
            {
                for (var j = 0; j < x.Length; j++)
                {
                    x2[j] = (float)(x[j] + (d[j] * dt));
                }

                model(x2, sigmas[i + 1], i, d2);
                for (var j = 0; j < x.Length; j++)
                {
                    x[j] += (float)((d[j] + d2[j]) / 2 * dt);
                }
            }

            onStep?.Invoke(i);
        }
    }
}

/// <summary>DPM2 (k-diffusion's sample_dpm_2): the slope at the log-midpoint σ; A1111 discards the next-to-last σ.</summary>
public sealed class Dpm2 : Sampler
{
    public override string Name => "DPM2";

    public override double[] SigmasFor(string schedule, NoiseSchedule model, int steps) => DiscardNextToLast(base.SigmasFor(schedule, model, steps + 1));

    public override LinearStep[] LinearPlan(double[] sigmas)
    {
        var plan = new List<LinearStep>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            MidpointStages(plan, sigmas[i], sigmas[i + 1], 0);
        }

        return [.. plan];
    }

    /// <summary><see cref="MidpointStep"/> as stages: the point at the log-midpoint, then the whole step with its slope; then <paramref name="noise"/>.</summary>
    internal static void MidpointStages(List<LinearStep> plan, double sigma, double to, double noise)
    {
        if (to == 0)
        {
            plan.Add(new LinearStep(sigma, X: 1, Eps: to - sigma, Noise: noise));
            return;
        }

        var mid = Math.Exp((Math.Log(sigma) + Math.Log(to)) / 2);
        plan.Add(new LinearStep(sigma, X: 1, Eps: mid - sigma, EndsStep: false));
        plan.Add(new LinearStep(mid, X: 1, Eps: to - sigma, Noise: noise));
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var d = new float[x.Length];
        var d2 = new float[x.Length];
        var x2 = new float[x.Length];
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            model(x, sigmas[i], i, d);
            MidpointStep(x, sigmas[i], sigmas[i + 1], d, d2, x2, model, i);
            onStep?.Invoke(i);
        }
    }

    /// <summary>From σ to <paramref name="to"/>: Euler when <paramref name="to"/> is 0, else the slope at exp((ln σ + ln to)/2) over the whole step.</summary>
    internal static void MidpointStep(float[] x, double sigma, double to, float[] d, float[] d2, float[] x2, Denoiser model, int step)
    {
        if (to == 0)
        {
            for (var j = 0; j < x.Length; j++)
            {
                x[j] += (float)(d[j] * (to - sigma));
            }

            return;
        }

        var mid = Math.Exp((Math.Log(sigma) + Math.Log(to)) / 2);
        for (var j = 0; j < x.Length; j++)
        {
            x2[j] = (float)(x[j] + (d[j] * (mid - sigma)));
        }

        model(x2, mid, step, d2);
        for (var j = 0; j < x.Length; j++)
        {
            x[j] += (float)(d2[j] * (to - sigma));
        }
    }
}

/// <summary>DPM2 ancestral (k-diffusion's sample_dpm_2_ancestral, η = 1): DPM2 down to σ_down, then fresh noise of σ_up.</summary>
public sealed class Dpm2Ancestral : Sampler
{
    public override bool UsesEnsd => true;

    public override string Name => "DPM2 a";

    public override double[] SigmasFor(string schedule, NoiseSchedule model, int steps) => DiscardNextToLast(base.SigmasFor(schedule, model, steps + 1));

    public override LinearStep[] LinearPlan(double[] sigmas)
    {
        var plan = new List<LinearStep>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            var (up, down) = EulerAncestral.AncestralStep(sigmas[i], sigmas[i + 1]);
            Dpm2.MidpointStages(plan, sigmas[i], down, up > 0 ? up : 0);
        }

        return [.. plan];
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var d = new float[x.Length];
        var d2 = new float[x.Length];
        var x2 = new float[x.Length];
        var fresh = new float[x.Length];
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            model(x, sigmas[i], i, d);
            var (up, down) = EulerAncestral.AncestralStep(sigmas[i], sigmas[i + 1]);
            Dpm2.MidpointStep(x, sigmas[i], down, d, d2, x2, model, i);
            if (up > 0)
            {
                AddNoise(x, fresh, noise, up);
            }

            onStep?.Invoke(i);
        }
    }
}

/// <summary>DPM++ 2S ancestral (k-diffusion's sample_dpmpp_2s_ancestral, η = 1): a second-order single step in log σ down to σ_down, then noise of σ_up.</summary>
public sealed class DpmPp2SAncestral : Sampler
{
    public override bool UsesEnsd => true;

    public override string Name => "DPM++ 2S a";
    public override string DefaultSchedule => "Karras";

    public override LinearStep[] LinearPlan(double[] sigmas)
    {
        var plan = new List<LinearStep>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            var sigma = sigmas[i];
            var (up, down) = EulerAncestral.AncestralStep(sigma, sigmas[i + 1]);
            var noise = sigmas[i + 1] > 0 && up > 0 ? up : 0;
            if (down == 0)
            {
                plan.Add(new LinearStep(sigma, X: 1, Eps: down - sigma, Noise: noise));
                continue;
            }

            var t = -Math.Log(sigma);
            var h = -Math.Log(down) - t;
            var sigmaS = Math.Exp(-(t + (h / 2)));
            plan.Add(new LinearStep(sigma, X: sigmaS / sigma, Denoised: -double.ExpM1(-h / 2), EndsStep: false));
            plan.Add(new LinearStep(sigmaS, X: down / sigma, Denoised: -double.ExpM1(-h), Noise: noise));
        }

        return [.. plan];
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var eps = new float[x.Length];
        var denoised = new float[x.Length];
        var x2 = new float[x.Length];
        var fresh = new float[x.Length];
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            var sigma = sigmas[i];
            model(x, sigma, i, eps);
            var (up, down) = EulerAncestral.AncestralStep(sigma, sigmas[i + 1]);
            if (down == 0)
            {
                for (var j = 0; j < x.Length; j++)
                {
                    x[j] += (float)(eps[j] * (down - sigma));
                }
            }
            else
            {
                Denoised(x, sigma, eps, denoised);
                var t = -Math.Log(sigma);
                var tNext = -Math.Log(down);
                var h = tNext - t;
                var s = t + (h / 2);
                var sigmaS = Math.Exp(-s);
                var first = -double.ExpM1(-h / 2);
                for (var j = 0; j < x.Length; j++)
                {
                    x2[j] = (float)((sigmaS / sigma * x[j]) + (first * denoised[j]));
                }

                model(x2, sigmaS, i, eps);
                Denoised(x2, sigmaS, eps, denoised);
                var second = -double.ExpM1(-h);
                for (var j = 0; j < x.Length; j++)
                {
                    x[j] = (float)((down / sigma * x[j]) + (second * denoised[j]));
                }
            }

            if (sigmas[i + 1] > 0 && up > 0)
            {
                AddNoise(x, fresh, noise, up);
            }

            onStep?.Invoke(i);
        }
    }
}

/// <summary>
/// DPM++ 2M SDE (k-diffusion's sample_dpmpp_2m_sde, η = 1, midpoint solver). A1111 draws its noise from a Brownian tree
/// (torchsde); here it is the run's Gaussian noise source, so pictures match A1111's only in distribution.
/// </summary>
public sealed class DpmPp2MSde : Sampler
{
    public override string Name => "DPM++ 2M SDE";
    public override string DefaultSchedule => "Exponential";

    public override LinearStep[] LinearPlan(double[] sigmas)
    {
        var plan = new LinearStep[sigmas.Length - 1];
        double? hLast = null;
        for (var i = 0; i < plan.Length; i++)
        {
            var (sigma, next) = (sigmas[i], sigmas[i + 1]);
            if (next == 0)
            {
                plan[i] = new LinearStep(sigma, Denoised: 1);
                continue;
            }

            var h = Math.Log(sigma) - Math.Log(next);
            var decay = next / sigma * Math.Exp(-h);
            var gain = -double.ExpM1(-2 * h);
            var correction = hLast is { } last ? 0.5 * gain / (last / h) : 0;
            plan[i] = new LinearStep(sigma, X: decay, Denoised: gain + correction, Previous: -correction, Noise: next * Math.Sqrt(-double.ExpM1(-2 * h)));
            hLast = h;
        }

        return plan;
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var eps = new float[x.Length];
        var denoised = new float[x.Length];
        var previous = new float[x.Length];
        var fresh = new float[x.Length];
        double? hLast = null;
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            var sigma = sigmas[i];
            var next = sigmas[i + 1];
            model(x, sigma, i, eps);
            Denoised(x, sigma, eps, denoised);
            if (next == 0)
            {
                Array.Copy(denoised, x, x.Length);
            }
            else
            {
                var h = Math.Log(sigma) - Math.Log(next);
                var etaH = h;
                var decay = next / sigma * Math.Exp(-etaH);
                var gain = -double.ExpM1(-h - etaH);
                for (var j = 0; j < x.Length; j++)
                {
                    x[j] = (float)((decay * x[j]) + (gain * denoised[j]));
                }

                if (hLast is { } last)
                {
                    var r = last / h;
                    var correction = 0.5 * gain / r;
                    for (var j = 0; j < x.Length; j++)
                    {
                        x[j] += (float)(correction * (denoised[j] - previous[j]));
                    }
                }

                AddNoise(x, fresh, noise, next * Math.Sqrt(-double.ExpM1(-2 * etaH)));

                hLast = h;
            }

            (previous, denoised) = (denoised, previous);
            onStep?.Invoke(i);
        }
    }
}

/// <summary>
/// DPM++ 3M SDE (k-diffusion's sample_dpmpp_3m_sde, η = 1); A1111 discards the next-to-last σ. Gaussian noise, as for
/// <see cref="DpmPp2MSde"/>.
/// </summary>
public sealed class DpmPp3MSde : Sampler
{
    public override string Name => "DPM++ 3M SDE";
    public override string DefaultSchedule => "Exponential";

    public override double[] SigmasFor(string schedule, NoiseSchedule model, int steps) => DiscardNextToLast(base.SigmasFor(schedule, model, steps + 1));

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var eps = new float[x.Length];
        var denoised = new float[x.Length];
        var denoised1 = new float[x.Length];
        var denoised2 = new float[x.Length];
        var fresh = new float[x.Length];
        double? h1 = null, h2 = null;
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            var sigma = sigmas[i];
            var next = sigmas[i + 1];
            model(x, sigma, i, eps);
            Denoised(x, sigma, eps, denoised);
            double? h = null;
            if (next == 0)
            {
                Array.Copy(denoised, x, x.Length);
            }
            else
            {
                var hh = Math.Log(sigma) - Math.Log(next);
                h = hh;
                var hEta = hh * 2; // η = 1
                var decay = Math.Exp(-hEta);
                var gain = -double.ExpM1(-hEta);
                for (var j = 0; j < x.Length; j++)
                {
                    x[j] = (float)((decay * x[j]) + (gain * denoised[j]));
                }

                var phi2 = (double.ExpM1(-hEta) / hEta) + 1;
                if (h2 is { } hTwo && h1 is { } hOne)
                {
                    var r0 = hOne / hh;
                    var r1 = hTwo / hh;
                    var phi3 = (phi2 / hEta) - 0.5;
                    for (var j = 0; j < x.Length; j++)
                    {
                        var d10 = (denoised[j] - denoised1[j]) / r0;
                        var d11 = (denoised1[j] - denoised2[j]) / r1;
                        var d1 = d10 + ((d10 - d11) * r0 / (r0 + r1));
                        var d2 = (d10 - d11) / (r0 + r1);
                        x[j] += (float)((phi2 * d1) - (phi3 * d2));
                    }
                }
                else if (h1 is { } hOnly)
                {
                    var r = hOnly / hh;
                    for (var j = 0; j < x.Length; j++)
                    {
                        x[j] += (float)(phi2 * ((denoised[j] - denoised1[j]) / r));
                    }
                }

                AddNoise(x, fresh, noise, next * Math.Sqrt(-double.ExpM1(-2 * hh)));
            }

            (denoised2, denoised1, denoised) = (denoised1, denoised, denoised2);
            (h2, h1) = (h1, h);
            onStep?.Invoke(i);
        }
    }
}

/// <summary>LCM (k-diffusion's sample_lcm): jump to the denoised sample, then add fresh noise at the next σ.</summary>
public sealed class Lcm : Sampler
{
    public override string Name => "LCM";

    public override LinearStep[] LinearPlan(double[] sigmas) =>
        [.. Enumerable.Range(0, sigmas.Length - 1).Select(i => new LinearStep(sigmas[i], Denoised: 1, Noise: sigmas[i + 1]))];

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var eps = new float[x.Length];
        var fresh = new float[x.Length];
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            model(x, sigmas[i], i, eps);
            Denoised(x, sigmas[i], eps, x);
            if (sigmas[i + 1] > 0)
            {
                AddNoise(x, fresh, noise, sigmas[i + 1]);
            }

            onStep?.Invoke(i);
        }
    }
}

/// <summary>
/// DPM++ SDE (k-diffusion's sample_dpmpp_sde, η = 1, r = ½): per step a first-order SDE step to the midpoint in log σ,
/// the model there, then the second-order step with the midpoint's prediction; an Euler step to σ = 0. A1111 draws its
/// noise from a Brownian tree; here it is the image's Gaussian noise, as for the other SDE samplers.
/// </summary>
public sealed class DpmPpSde : Sampler
{
    public override string Name => "DPM++ SDE";
    public override string DefaultSchedule => "Karras";

    public override LinearStep[] LinearPlan(double[] sigmas)
    {
        var plan = new List<LinearStep>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            var (sigma, next) = (sigmas[i], sigmas[i + 1]);
            if (next == 0)
            {
                plan.Add(new LinearStep(sigma, X: 1, Eps: next - sigma));
                continue;
            }

            // Both noises are drawn whatever their size in Run; here they are never 0 (σ_s and the next σ are below σ).
            var t = -Math.Log(sigma);
            var h = -Math.Log(next) - t;
            var sigmaS = Math.Exp(-(t + (h / 2)));
            var (up1, down1) = EulerAncestral.AncestralStep(sigma, sigmaS);
            plan.Add(new LinearStep(sigma, X: down1 / sigma, Denoised: -double.ExpM1(t + Math.Log(down1)), Noise: up1, EndsStep: false));
            var (up2, down2) = EulerAncestral.AncestralStep(sigma, next);
            plan.Add(new LinearStep(sigmaS, X: down2 / sigma, Denoised: -double.ExpM1(t + Math.Log(down2)), Noise: up2));
        }

        return [.. plan];
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var eps = new float[x.Length];
        var denoised = new float[x.Length];
        var midpoint = new float[x.Length];
        var x2 = new float[x.Length];
        var fresh = new float[x.Length];
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            ct.ThrowIfCancellationRequested();
            var sigma = sigmas[i];
            var next = sigmas[i + 1];
            model(x, sigma, i, eps);
            if (next == 0)
            {
                AddScaled(x, eps, next - sigma);
            }
            else
            {
                Denoised(x, sigma, eps, denoised);
                var t = -Math.Log(sigma);
                var h = -Math.Log(next) - t;
                var sigmaS = Math.Exp(-(t + (h / 2)));

                // Step 1: to the midpoint σ_s, as an ancestral step (σ_down, then noise of σ_up).
                var (up1, down1) = EulerAncestral.AncestralStep(sigma, sigmaS);
                var first = -double.ExpM1(t + Math.Log(down1));
                for (var j = 0; j < x.Length; j++)
                {
                    x2[j] = (float)((down1 / sigma * x[j]) + (first * denoised[j]));
                }

                AddNoise(x2, fresh, noise, up1);
                model(x2, sigmaS, i, eps);
                Denoised(x2, sigmaS, eps, midpoint);

                // Step 2: the whole step with the midpoint's prediction (r = ½ makes its weight 1).
                var (up2, down2) = EulerAncestral.AncestralStep(sigma, next);
                var second = -double.ExpM1(t + Math.Log(down2));
                for (var j = 0; j < x.Length; j++)
                {
                    x[j] = (float)((down2 / sigma * x[j]) + (second * midpoint[j]));
                }

                AddNoise(x, fresh, noise, up2);
            }

            onStep?.Invoke(i);
        }
    }
}

/// <summary>
/// Restart (A1111's restart_sampler, after "Restart Sampling for Improving Generative Processes", 2023): Heun steps over
/// a Karras schedule that, from 20 steps on, keeps 9 steps (from 36 on, a quarter of them, twice) for restarts: at the σ
/// nearest 0.1 the latents are noised back up to the σ nearest 2 (fresh noise of √(σ_hi² − σ_lo²)) and that stretch is
/// sampled again on a Karras schedule of its own. Under 20 steps it is Heun on the given schedule.
/// </summary>
public sealed class Restart : Sampler
{
    public override string Name => "Restart";
    public override string DefaultSchedule => "Karras";

    public override int StepsOver(double[] sigmas) => Plan(sigmas).Count;

    /// <summary>The (from, to) pairs A1111 steps through, restarts included.</summary>
    internal static List<(double From, double To)> Plan(double[] sigmas)
    {
        var steps = sigmas.Length - 1;
        var restart = (Steps: 0, Times: 0);
        if (steps >= 20 && sigmas.Length >= 2)
        {
            restart = steps >= 36 ? (steps / 4, 2) : (9, 1);
            sigmas = Schedules.Karras(sigmas[^2], sigmas[0], steps - (restart.Steps * restart.Times));
            restart.Steps++;
        }

        int Nearest(double value) => Enumerable.Range(0, sigmas.Length).MinBy(i => Math.Abs(sigmas[i] - value));
        var at = restart.Times > 0 ? Nearest(0.1) : -1;
        var list = new List<(double, double)>();
        for (var i = 0; i < sigmas.Length - 1; i++)
        {
            list.Add((sigmas[i], sigmas[i + 1]));
            if (i + 1 == at)
            {
                var top = Nearest(2);
                if (top < at)
                {
                    var again = Schedules.Karras(sigmas[at], sigmas[top], restart.Steps)[..^1];
                    for (var n = 0; n < restart.Times; n++)
                    {
                        for (var k = 0; k < again.Length - 1; k++)
                        {
                            list.Add((again[k], again[k + 1]));
                        }
                    }
                }
            }
        }

        return list;
    }

    public override LinearStep[] LinearPlan(double[] sigmas)
    {
        // Heun's stages over the restart plan. A restart's noise, which Run adds as the next step begins, is drawn after
        // the step before it here (the same draws in the same order; only a preview or a skip at that step sees it sooner).
        var steps = Plan(sigmas);
        var plan = new List<LinearStep>();
        for (var k = 0; k < steps.Count; k++)
        {
            var (from, to) = steps[k];
            var restart = k + 1 < steps.Count && to < steps[k + 1].From ? Math.Sqrt((steps[k + 1].From * steps[k + 1].From) - (to * to)) : 0;
            Heun.Stages(plan, from, to, restart);
        }

        return [.. plan];
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var eps = new float[x.Length];
        var eps2 = new float[x.Length];
        var x2 = new float[x.Length];
        var fresh = new float[x.Length];
        double? last = null;
        var step = 0;
        foreach (var (from, to) in Plan(sigmas))
        {
            ct.ThrowIfCancellationRequested();
            if (last is { } previous && previous < from)
            {
                AddNoise(x, fresh, noise, Math.Sqrt((from * from) - (previous * previous)));
            }

            // Heun's step (Euler into σ = 0); with x = x₀ + σ·ε the slope d is the model's ε.
            model(x, from, step, eps);
            var dt = to - from;
            if (to == 0)
            {
                AddScaled(x, eps, dt);
            }
            else
            {
                for (var j = 0; j < x.Length; j++)
                {
                    x2[j] = (float)(x[j] + (eps[j] * dt));
                }

                model(x2, to, step, eps2);
                for (var j = 0; j < x.Length; j++)
                {
                    x[j] += (float)((eps[j] + eps2[j]) / 2 * dt);
                }
            }

            last = to;
            onStep?.Invoke(step++);
        }
    }
}

/// <summary>
/// PLMS (A1111's timesteps sampler after CompVis: pseudo linear multistep) on DDIM's timesteps: the first step is a pseudo
/// improved Euler step (the model again at the step's end, the two ε averaged), then Adams–Bashforth over the last two to
/// four ε. In σ space here, where the DDIM-style update x_prev = √ᾱ_prev·x̂₀ + √(1 − ᾱ_prev)·ε is x + (σ_prev − σ)·ε.
/// </summary>
public sealed class Plms : Sampler
{
    public override string Name => "PLMS";

    public override bool StartsFromUnitNoise => true;

    public override double[] SigmasFor(string schedule, NoiseSchedule model, int steps) => All.OfType<Ddim>().First().SigmasFor(schedule, model, steps);

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var n = sigmas.Length - 1;
        var eps = new float[x.Length];
        var next = new float[x.Length];
        var combined = new float[x.Length];
        float[][] old = [new float[x.Length], new float[x.Length], new float[x.Length]];
        var kept = 0;
        for (var i = 0; i < n; i++)
        {
            ct.ThrowIfCancellationRequested();
            var (sigma, to) = (sigmas[i], sigmas[i + 1]);
            model(x, sigma, i, eps);
            switch (kept)
            {
                case 0:
                    // The model at the end of an Euler step (at the next timestep; on the last step A1111 asks at this one).
                    for (var j = 0; j < x.Length; j++)
                    {
                        combined[j] = (float)(x[j] + ((to - sigma) * eps[j]));
                    }

                    model(combined, i + 1 < n ? to : sigma, i, next);
                    for (var j = 0; j < x.Length; j++)
                    {
                        combined[j] = (eps[j] + next[j]) / 2;
                    }

                    break;
                case 1:
                    for (var j = 0; j < x.Length; j++)
                    {
                        combined[j] = ((3 * eps[j]) - old[0][j]) / 2;
                    }

                    break;
                case 2:
                    for (var j = 0; j < x.Length; j++)
                    {
                        combined[j] = ((23 * eps[j]) - (16 * old[0][j]) + (5 * old[1][j])) / 12;
                    }

                    break;
                default:
                    for (var j = 0; j < x.Length; j++)
                    {
                        combined[j] = ((55 * eps[j]) - (59 * old[0][j]) + (37 * old[1][j]) - (9 * old[2][j])) / 24;
                    }

                    break;
            }

            AddScaled(x, combined, to - sigma);

            // The newest ε first: old[0] is the last step's, old[1] the one before, old[2] the one before that.
            var oldest = old[2];
            old[2] = old[1];
            old[1] = old[0];
            old[0] = oldest;
            eps.CopyTo(old[0], 0);
            kept = Math.Min(kept + 1, 3);
            onStep?.Invoke(i);
        }
    }
}
