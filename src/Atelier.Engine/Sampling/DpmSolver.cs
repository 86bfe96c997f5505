namespace Atelier.Engine.Sampling;

/// <summary>
/// k-diffusion's DPM-Solver (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model Sampling
/// in Around 10 Steps"): in t = −log σ, the first-, second- and third-order steps of its Algorithms 1 and 2 (k-diffusion's
/// <c>dpm_solver_1_step</c>, <c>_2_step</c>, <c>_3_step</c>), with the model's ε at the step's start shared between them.
/// A1111 runs both samplers built on it with <c>eta_ancestral</c> (1 by default): each step ends part-way down and adds
/// fresh noise, as its ancestral samplers do.
/// </summary>
internal sealed class DpmSolverSteps(Denoiser model, int size)
{
    private readonly float[] _eps = new float[size];
    private readonly float[] _epsR1 = new float[size];
    private readonly float[] _epsR2 = new float[size];
    private readonly float[] _u = new float[size];

    public int Calls { get; private set; }

    public static double T(double sigma) => -Math.Log(sigma);

    public static double Sigma(double t) => Math.Exp(-t);

    /// <summary>ε at the step's start (the model call each step begins with).</summary>
    public void Start(ReadOnlySpan<float> x, double t, int step) => Eval(x, t, step, _eps);

    /// <summary>First order (DDIM's step in t): x − σ(t')·(eʰ − 1)·ε.</summary>
    public void First(ReadOnlySpan<float> x, double t, double tNext, Span<float> result)
    {
        var h = tNext - t;
        var a = Sigma(tNext) * double.ExpM1(h);
        for (var j = 0; j < result.Length; j++)
        {
            result[j] = (float)(x[j] - (a * _eps[j]));
        }
    }

    /// <summary>Second order, its midpoint at r1 of the step (ε there is kept for a third-order step of the same r1).</summary>
    public void Second(ReadOnlySpan<float> x, double t, double tNext, int step, Span<float> result, double r1 = 0.5)
    {
        var h = tNext - t;
        var s1 = t + (r1 * h);
        var b = Sigma(s1) * double.ExpM1(r1 * h);
        for (var j = 0; j < _u.Length; j++)
        {
            _u[j] = (float)(x[j] - (b * _eps[j]));
        }

        Eval(_u, s1, step, _epsR1);
        var a = Sigma(tNext) * double.ExpM1(h);
        var c = Sigma(tNext) / (2 * r1) * double.ExpM1(h);
        for (var j = 0; j < result.Length; j++)
        {
            result[j] = (float)(x[j] - (a * _eps[j]) - (c * (_epsR1[j] - _eps[j])));
        }
    }

    /// <summary>Third order (r1 = 1/3, r2 = 2/3); with <paramref name="haveR1"/> the ε at r1 of a second-order step just taken is reused.</summary>
    public void Third(ReadOnlySpan<float> x, double t, double tNext, int step, Span<float> result, bool haveR1 = false)
    {
        const double r1 = 1.0 / 3, r2 = 2.0 / 3;
        var h = tNext - t;
        var s1 = t + (r1 * h);
        var s2 = t + (r2 * h);
        if (!haveR1)
        {
            var b1 = Sigma(s1) * double.ExpM1(r1 * h);
            for (var j = 0; j < _u.Length; j++)
            {
                _u[j] = (float)(x[j] - (b1 * _eps[j]));
            }

            Eval(_u, s1, step, _epsR1);
        }

        var b2 = Sigma(s2) * double.ExpM1(r2 * h);
        var c2 = Sigma(s2) * (r2 / r1) * ((double.ExpM1(r2 * h) / (r2 * h)) - 1);
        for (var j = 0; j < _u.Length; j++)
        {
            _u[j] = (float)(x[j] - (b2 * _eps[j]) - (c2 * (_epsR1[j] - _eps[j])));
        }

        Eval(_u, s2, step, _epsR2);
        var a = Sigma(tNext) * double.ExpM1(h);
        var c = Sigma(tNext) / r2 * ((double.ExpM1(h) / h) - 1);
        for (var j = 0; j < result.Length; j++)
        {
            result[j] = (float)(x[j] - (a * _eps[j]) - (c * (_epsR2[j] - _eps[j])));
        }
    }

    /// <summary>
    /// Where an ancestral step of A1111's eta ends (t′, never past <paramref name="tEnd"/>) and the noise it adds then:
    /// k-diffusion's get_ancestral_step, with the noise made up for the clamp.
    /// </summary>
    public static (double TDown, double Up) Ancestral(double t, double tNext, double tEnd, double eta)
    {
        if (eta == 0)
        {
            return (tNext, 0);
        }

        var (from, to) = (Sigma(t), Sigma(tNext));
        var up = Math.Min(to, eta * Math.Sqrt(to * to * ((from * from) - (to * to)) / (from * from)));
        var down = Math.Sqrt((to * to) - (up * up));
        var tDown = Math.Min(tEnd, T(down));
        var sd = Sigma(tDown);
        return (tDown, Math.Sqrt(Math.Max(0, (to * to) - (sd * sd))));
    }

    private void Eval(ReadOnlySpan<float> x, double t, int step, Span<float> eps)
    {
        Calls++;
        model(x, Sigma(t), step, eps);
    }
}

/// <summary>
/// DPM fast (k-diffusion's sample_dpm_fast, A1111's "DPM fast"): DPM-Solver-fast over the σ range in equal steps of t,
/// third order, the last one or two steps of lower order so that the model is called exactly once per requested step.
/// It runs from the first σ down to the last non-zero one (for txt2img, the model's σ_min, as A1111 passes it) and ends
/// there, with that little noise left, as k-diffusion does.
/// </summary>
public sealed class DpmFast(double eta = 1) : Sampler
{
    public override string Name => "DPM fast";
    public override bool UsesEnsd => true;

    /// <summary>A1111 gives DPM fast the model's σ range whatever the schedule: the Normal schedule's first and last non-zero σ are exactly that.</summary>
    public override double[] SigmasFor(string schedule, NoiseSchedule model, int steps) => ModelRange(model, steps);

    /// <summary>
    /// The σs these samplers run over: the Normal schedule's (its first and last non-zero σ are the model's range), one
    /// step of it being [σ_max, σ_min] (its own [σ_max, 0] would leave no range to run).
    /// </summary>
    internal static double[] ModelRange(NoiseSchedule model, int steps) =>
        steps <= 1 ? [model.SigmaMax, model.SigmaMin] : Schedules.Sigmas("Normal", model, steps);

    /// <summary>The orders of the steps for <paramref name="calls"/> model calls (DPM-Solver-fast's split).</summary>
    public static int[] Orders(int calls)
    {
        var m = (calls / 3) + 1;
        return calls % 3 == 0 ? [.. Enumerable.Repeat(3, m - 2), 2, 1] : [.. Enumerable.Repeat(3, m - 1), calls % 3];
    }

    public override int StepsOver(double[] sigmas) => Orders(sigmas.Length - 1).Length;

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        var calls = sigmas.Length - 1;
        var sigmaMin = sigmas[^1] > 0 ? sigmas[^1] : sigmas[^2];
        var (tStart, tEnd) = (DpmSolverSteps.T(sigmas[0]), DpmSolverSteps.T(sigmaMin));
        var orders = Orders(calls);
        var solver = new DpmSolverSteps(model, x.Length);
        var next = new float[x.Length];
        var fresh = new float[x.Length];
        for (var i = 0; i < orders.Length; i++)
        {
            ct.ThrowIfCancellationRequested();
            var t = tStart + ((tEnd - tStart) * i / orders.Length);
            var tNext = tStart + ((tEnd - tStart) * (i + 1) / orders.Length);
            var (tDown, up) = DpmSolverSteps.Ancestral(t, tNext, tEnd, eta);
            solver.Start(x, t, i);
            switch (orders[i])
            {
                case 1:
                    solver.First(x, t, tDown, next);
                    break;
                case 2:
                    solver.Second(x, t, tDown, i, next);
                    break;
                default:
                    solver.Third(x, t, tDown, i, next);
                    break;
            }

            next.CopyTo(x, 0);
            if (eta > 0)
            {
                AddNoise(x, fresh, noise, up);
            }

            onStep?.Invoke(i);
        }
    }
}

/// <summary>
/// DPM adaptive (k-diffusion's sample_dpm_adaptive, A1111's "DPM adaptive"): DPM-Solver-23 with step-size control. Each
/// attempt makes a second- and a third-order estimate from three model calls; their difference, scaled by atol 0.0078 and
/// rtol 0.05, is the error a PID controller (k-diffusion's, integral only, safety 0.81) grows or shrinks the step by,
/// rejecting a step it shrinks below the safety factor. It ignores the step count: it goes on until it reaches the
/// last non-zero σ (at most <see cref="MaxAttempts"/> attempts).
/// </summary>
public sealed class DpmAdaptive(double eta = 1) : Sampler
{
    /// <summary>The most attempts one pass may take (a bound on the loop whatever the model does).</summary>
    public const int MaxAttempts = 1000;

    public override string Name => "DPM adaptive";
    public override bool UsesEnsd => true;

    public override double[] SigmasFor(string schedule, NoiseSchedule model, int steps) => DpmFast.ModelRange(model, steps);

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        const double rtol = 0.05, atol = 0.0078, hInit = 0.05, safety = 0.81;
        var sigmaMin = sigmas[^1] > 0 ? sigmas[^1] : sigmas[^2];
        var (s, tEnd) = (DpmSolverSteps.T(sigmas[0]), DpmSolverSteps.T(sigmaMin));
        var solver = new DpmSolverSteps(model, x.Length);
        var low = new float[x.Length];
        var high = new float[x.Length];
        var previous = (float[])x.Clone();
        var fresh = new float[x.Length];
        // PID with pcoeff 0, icoeff 1, dcoeff 0 over order 1.5 (eta) or 3: factor = (1/error)^(1/order), limited by 1 + atan(f − 1).
        var exponent = 1 / (eta > 0 ? 1.5 : 3);
        var h = hInit;
        var steps = StepsOver(sigmas);
        var (attempts, accepted) = (0, 0);
        while (s < tEnd - 1e-5 && attempts < MaxAttempts)
        {
            ct.ThrowIfCancellationRequested();
            var t = Math.Min(tEnd, s + h);
            var (tDown, up) = DpmSolverSteps.Ancestral(s, t, tEnd, eta);
            var step = Math.Min(accepted, steps - 1);
            solver.Start(x, s, step);
            solver.Second(x, s, tDown, step, low, r1: 1.0 / 3);
            solver.Third(x, s, tDown, step, high, haveR1: true);
            double sum = 0;
            for (var j = 0; j < x.Length; j++)
            {
                var delta = Math.Max(atol, rtol * Math.Max(Math.Abs(low[j]), Math.Abs(previous[j])));
                var e = (low[j] - high[j]) / delta;
                sum += e * e;
            }

            var error = Math.Sqrt(sum) / Math.Sqrt(x.Length);
            var factor = Math.Pow(1 / (error + 1e-8), exponent);
            factor = 1 + Math.Atan(factor - 1);
            attempts++;
            if (factor >= safety)
            {
                low.CopyTo(previous, 0);
                high.CopyTo(x, 0);
                if (eta > 0)
                {
                    AddNoise(x, fresh, noise, up);
                }

                s = t;
                accepted++;
            }

            h *= factor;
            onStep?.Invoke(step);
        }
    }
}
