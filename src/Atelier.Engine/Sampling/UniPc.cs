namespace Atelier.Engine.Sampling;

/// <summary>
/// UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion Models") as
/// AUTOMATIC1111 runs it with its default options: the multistep solver of order 3 on the data prediction, variant
/// B(h) = h ("bh1"), lower orders on the last steps, the corrector after every step but the last (its model call is the
/// next step's), over a time grid uniform in the continuous time t ∈ [1/1000, 1] of the discrete schedule, where
/// log α(t) is interpolated linearly between the training timesteps (t = (i + 1)/1000 is timestep i) and the model is
/// asked at timestep 1000·t − 1. Everything runs in σ space here (x = x_VP/α, σ = σ_VP/α, λ = −log σ), where the step
/// from s to t reads x_t = (σ_t/σ_s)·x_s − (e^(−h) − 1)·m_s − h·(the B(h) terms), h = λ_t − λ_s.
/// </summary>
/// <remarks>
/// The σ list this sampler takes has a lead entry: sigmas[0] is the noise level the latents were made at and
/// sigmas[1..] its time grid. They are the same in txt2img; in img2img A1111 noises the picture at timestep
/// <c>timesteps[t_enc]</c> but starts the solver at t = (<c>timesteps[t_enc − 1]</c> + 1)/1000 (its code says it is
/// "likely off by a bit"), and the latents are rescaled to the grid's start as A1111's are. The result is returned as
/// A1111 returns it, in the model's variance-preserving scale at t = 1/1000. Fewer steps than the order lower the order
/// (A1111 refuses those with an assertion).
/// </remarks>
public sealed class UniPc : Sampler
{
    public const int DefaultOrder = 3;

    public override string Name => "UniPC";

    public override bool StartsFromUnitNoise => true;

    /// <summary>The solver's order (A1111's <c>uni_pc_order</c>).</summary>
    public int Order { get; init; } = DefaultOrder;

    public override int StepsOver(double[] sigmas) => Math.Max(sigmas.Length - 2, 0);

    /// <summary>Past the lead σ: step k ends at the grid's (k + 1)th point, sigmas[k + 2].</summary>
    public override double SigmaAfterStep(double[] sigmas, int step) => sigmas[Math.Min(step + 2, sigmas.Length - 1)];

    /// <summary>
    /// txt2img: as many steps as A1111's timesteps for the request (<c>range(0, 1000, 1000 // steps)</c>, so 30 steps
    /// make 31), t from 1 to 1/1000.
    /// </summary>
    public override double[] SigmasFor(string schedule, NoiseSchedule model, int steps)
    {
        var grid = Grid(model, 1, Timesteps(model, steps).Length);
        return [grid[0], .. grid];
    }

    public override double[] Img2ImgSigmas(double[] all, NoiseSchedule model, int steps, int tEnc)
    {
        var timesteps = Timesteps(model, steps);
        tEnc = Math.Clamp(tEnc, 1, timesteps.Length - 1);
        var start = (timesteps[tEnc - 1] / (double)model.TrainSteps) + (1.0 / model.TrainSteps);
        return [model.Sigmas[timesteps[tEnc]], .. Grid(model, start, tEnc)];
    }

    /// <summary>A1111's timesteps for the CompVis samplers: 1, 1 + ⌊N/steps⌋, … below N (clipped to N − 1).</summary>
    public static int[] Timesteps(NoiseSchedule model, int steps)
    {
        var n = model.TrainSteps;
        var stride = Math.Max(n / Math.Max(steps, 1), 1);
        return [.. Enumerable.Range(0, ((n - 1) / stride) + 1).Select(i => Math.Min((i * stride) + 1, n - 1))];
    }

    /// <summary>σ along the grid t = linspace(<paramref name="start"/>, 1/N, steps + 1), with log α interpolated linearly in t.</summary>
    public static double[] Grid(NoiseSchedule model, double start, int steps)
    {
        var n = model.TrainSteps;
        var end = 1.0 / n;
        var grid = new double[steps + 1];
        var delta = (end - start) / steps;
        for (var i = 0; i <= steps; i++)
        {
            // torch.linspace: from the start for the first half, from the end for the second.
            var t = i < (steps + 1) / 2 ? start + (i * delta) : end - ((steps - i) * delta);
            grid[i] = SigmaAt(model, t);
        }

        return grid;
    }

    /// <summary>σ = √(1 − α²)/α at continuous time t, log α = ½·log ᾱ interpolated linearly between t_i = (i + 1)/N.</summary>
    public static double SigmaAt(NoiseSchedule model, double t)
    {
        var n = model.TrainSteps;
        var position = Math.Clamp((t * n) - 1, 0, n - 1);
        var lo = Math.Min((int)Math.Floor(position), n - 2);
        var w = position - lo;
        var logAlpha = 0.5 * ((Math.Log(model.AlphasCumprod[lo]) * (1 - w)) + (Math.Log(model.AlphasCumprod[lo + 1]) * w));
        return Math.Sqrt(Math.Exp(-2 * logAlpha) - 1);
    }

    public override void Run(float[] x, double[] sigmas, Denoiser model, NoiseSource noise, Action<int>? onStep, CancellationToken ct)
    {
        if (sigmas.Length < 3)
        {
            return;
        }

        var grid = sigmas[1..];
        var steps = grid.Length - 1;
        var order = Math.Clamp(Order, 1, steps);
        // The latents as the solver takes them: the same variance-preserving values, read at the grid's first σ.
        Scale(x, Math.Sqrt(1 + (grid[0] * grid[0])) / Math.Sqrt(1 + (sigmas[0] * sigmas[0])));

        var eps = new float[x.Length];
        var history = new List<(double Lambda, float[] Model)>(order);
        var pool = new Stack<float[]>();
        float[] Predict(ReadOnlySpan<float> at, double sigma, int step)
        {
            model(at, sigma, step, eps);
            var m = pool.Count > 0 ? pool.Pop() : new float[x.Length];
            Denoised(at, sigma, eps, m);
            return m;
        }

        ct.ThrowIfCancellationRequested();
        history.Add((-Math.Log(grid[0]), Predict(x, grid[0], 0)));
        var baseline = new float[x.Length];
        var predicted = new float[x.Length];
        var differences = Enumerable.Range(0, order).Select(_ => new float[x.Length]).ToArray();
        for (var step = 1; step <= steps; step++)
        {
            ct.ThrowIfCancellationRequested();
            var stepOrder = step < order ? step : Math.Min(order, steps + 1 - step);
            var corrector = step < steps;
            var (lambdaS, m0) = history[^1];
            var lambdaT = -Math.Log(grid[step]);
            var h = lambdaT - lambdaS;

            // rₖ and D1ₖ = (m of the k-th older step − m₀)/rₖ for the step's order.
            var rks = new double[stepOrder];
            for (var k = 1; k < stepOrder; k++)
            {
                var (lambdaK, mK) = history[^(k + 1)];
                rks[k - 1] = (lambdaK - lambdaS) / h;
                var d = differences[k - 1];
                var inverse = 1 / rks[k - 1];
                for (var j = 0; j < x.Length; j++)
                {
                    d[j] = (float)((mK[j] - m0[j]) * inverse);
                }
            }

            rks[stepOrder - 1] = 1;
            var (bh, b, r) = Coefficients(rks, -h);
            var hPhi1 = double.ExpM1(-h);
            var ratio = grid[step] / grid[step - 1];
            for (var j = 0; j < x.Length; j++)
            {
                baseline[j] = (float)((ratio * x[j]) - (hPhi1 * m0[j]));
            }

            // The predictor: ρ from R ρ = b over the older steps (½ at order 2, none at order 1).
            var rhosP = stepOrder switch
            {
                1 => [],
                2 => [0.5],
                _ => Solve(Sub(r, stepOrder - 1), b[..(stepOrder - 1)]),
            };
            for (var j = 0; j < x.Length; j++)
            {
                double residual = 0;
                for (var k = 0; k < rhosP.Length; k++)
                {
                    residual += rhosP[k] * differences[k][j];
                }

                predicted[j] = (float)(baseline[j] - (bh * residual));
            }

            float[]? modelT = null;
            if (corrector)
            {
                // The corrector: the model at the predicted point, then ρ from the full system (½ at order 1).
                modelT = Predict(predicted, grid[step], step);
                var rhosC = stepOrder == 1 ? [0.5] : Solve(r, b);
                for (var j = 0; j < x.Length; j++)
                {
                    double residual = 0;
                    for (var k = 0; k < stepOrder - 1; k++)
                    {
                        residual += rhosC[k] * differences[k][j];
                    }

                    residual += rhosC[stepOrder - 1] * (modelT[j] - m0[j]);
                    x[j] = (float)(baseline[j] - (bh * residual));
                }
            }
            else
            {
                predicted.CopyTo(x, 0);
            }

            if (modelT is not null)
            {
                history.Add((lambdaT, modelT));
                if (history.Count > order)
                {
                    pool.Push(history[0].Model);
                    history.RemoveAt(0);
                }
            }

            onStep?.Invoke(step - 1);
        }

        // A1111 hands the variance-preserving latents at t = 1/N to the VAE.
        Scale(x, 1 / Math.Sqrt(1 + (grid[^1] * grid[^1])));
    }

    /// <summary>B(h) (= hh, variant bh1) and the system R ρ = b: Rᵢₖ = rₖ^i, bᵢ = hφᵢ₊₁(hh)·(i + 1)!/B(h), for hh = −h.</summary>
    private static (double Bh, double[] B, double[,] R) Coefficients(double[] rks, double hh)
    {
        var order = rks.Length;
        var hPhiK = (double.ExpM1(hh) / hh) - 1;
        double factorial = 1;
        var bh = hh;
        var b = new double[order];
        var r = new double[order, order];
        for (var i = 1; i <= order; i++)
        {
            for (var k = 0; k < order; k++)
            {
                r[i - 1, k] = Math.Pow(rks[k], i - 1);
            }

            b[i - 1] = hPhiK * factorial / bh;
            factorial *= i + 1;
            hPhiK = (hPhiK / hh) - (1 / factorial);
        }

        return (bh, b, r);
    }

    private static double[,] Sub(double[,] m, int n)
    {
        var s = new double[n, n];
        for (var i = 0; i < n; i++)
        {
            for (var k = 0; k < n; k++)
            {
                s[i, k] = m[i, k];
            }
        }

        return s;
    }

    /// <summary>Solves A·y = b (at most 3×3 here) by Gaussian elimination with partial pivoting.</summary>
    private static double[] Solve(double[,] a, double[] b)
    {
        var n = b.Length;
        var m = (double[,])a.Clone();
        var y = (double[])b.Clone();
        for (var c = 0; c < n; c++)
        {
            var pivot = c;
            for (var i = c + 1; i < n; i++)
            {
                if (Math.Abs(m[i, c]) > Math.Abs(m[pivot, c]))
                {
                    pivot = i;
                }
            }

            if (pivot != c)
            {
                for (var k = 0; k < n; k++)
                {
                    (m[c, k], m[pivot, k]) = (m[pivot, k], m[c, k]);
                }

                (y[c], y[pivot]) = (y[pivot], y[c]);
            }

            for (var i = c + 1; i < n; i++)
            {
                var f = m[i, c] / m[c, c];
                for (var k = c; k < n; k++)
                {
                    m[i, k] -= f * m[c, k];
                }

                y[i] -= f * y[c];
            }
        }

        for (var i = n - 1; i >= 0; i--)
        {
            for (var k = i + 1; k < n; k++)
            {
                y[i] -= m[i, k] * y[k];
            }

            y[i] /= m[i, i];
        }

        return y;
    }

    private static void Scale(float[] x, double factor)
    {
        if (factor == 1)
        {
            return;
        }

        for (var j = 0; j < x.Length; j++)
        {
            x[j] = (float)(x[j] * factor);
        }
    }
}
