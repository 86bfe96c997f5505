using Atelier.Engine.Sampling;

namespace Atelier.Engine.Tests;

/// <summary>The schedules and samplers against reference values computed from k-diffusion's formulas (relative tolerance 1e-4).</summary>
public class SamplingTests
{
    private static readonly NoiseSchedule Model = new();

    private static void Close(double expected, double actual, double rel = 1e-4, double abs = 1e-6) =>
        Assert.True(Math.Abs(expected - actual) <= Math.Max(abs, rel * Math.Abs(expected)), $"expected {expected}, got {actual}");

    private static void CloseAll(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Close(expected[i], actual[i], rel: 1e-4, abs: 1e-5);
        }
    }

    [Fact]
    public void TrainingSchedule_MatchesReference()
    {
        Close(0.99915, Model.AlphasCumprod[0]);
        Close(0.004660098513, Model.AlphasCumprod[999]);
        Close(0.02916716, Model.SigmaMin);
        Close(14.61464123, Model.SigmaMax);
        Close(1.61827883, Model.Sigmas[500]);
        Close(0.00815500, Model.AlphasCumprod[951]);
    }

    [Fact]
    public void DiffusersEulerSigmas_N20_MatchReference()
    {
        CloseAll([14.61464, 10.74684, 8.08153, 6.20495, 4.85566, 3.86538, 3.12377, 2.55717, 2.11566, 1.76482, 1.48058, 1.24581, 1.04814,
            0.87843, 0.72972, 0.59643, 0.47359, 0.35555, 0.23217, 0.02917, 0], Schedules.DiffusersLinspace(Model, 20));
    }

    [Fact]
    public void NormalSchedule_N20_InterpolatesLogSigma()
    {
        var s = Schedules.Sigmas("Normal", Model, 20);
        CloseAll([14.61464, 10.74680, 8.08152, 6.20493], s[..4]);
        CloseAll([0.23216, 0.02917, 0], s[^3..]);
    }

    [Fact]
    public void KarrasSchedule_N20_MatchesReference()
    {
        CloseAll([14.61464, 11.72536, 9.34020, 7.38362, 5.78941, 4.49984, 3.46475, 2.64084, 1.99092, 1.48321, 1.09079, 0.79095, 0.56472,
            0.39639, 0.27304, 0.18417, 0.12134, 0.07786, 0.04848, 0.02917, 0], Schedules.Sigmas("Karras", Model, 20));
        Close(961.733, Model.TimestepOf(11.72536), rel: 1e-5);
        Close(1.783, Model.TimestepOf(0.04848), rel: 2e-3);
    }

    // Reference values below: computed in double precision from each schedule's published formula (k-diffusion's
    // get_sigmas_exponential / get_sigmas_polyexponential; A1111 1.10 modules/sd_schedulers.py for sgm_uniform, kl_optimal,
    // simple, ddim and align_your_steps, with NVIDIA's SD 1.5 list; the Beta quantile by integrating the Beta density
    // numerically, independently of the engine's continued fraction), on SD 1.x's training schedule, n = 10.

    [Fact]
    public void ExponentialAndPolyexponential_N10_MatchTheFormula()
    {
        double[] expected = [14.614641, 7.324870, 3.671231, 1.840024, 0.922222, 0.462218, 0.231664, 0.116110, 0.058195, 0.029167, 0];
        CloseAll(expected, Schedules.Sigmas("Exponential", Model, 10));
        CloseAll(expected, Schedules.Sigmas("polyexponential", Model, 10)); // ρ = 1, A1111's default: the same schedule
    }

    [Fact]
    public void SgmUniform_N10_IsTheDiscreteScheduleAtNPlusOneTimestepsWithoutTheLast()
    {
        CloseAll([14.614641, 8.307172, 5.092408, 3.325069, 2.279730, 1.615580, 1.162865, 0.831884, 0.571189, 0.343705, 0], Schedules.Sigmas("SGM Uniform", Model, 10));
        CloseAll(Schedules.Sigmas("SGM Uniform", Model, 10), Schedules.Sigmas("SGMUniform", Model, 10));
    }

    [Fact]
    public void KlOptimal_N10_EndsAtSigmaMin()
    {
        CloseAll([14.614641, 4.565037, 2.632888, 1.786445, 1.294767, 0.961588, 0.711627, 0.509419, 0.335637, 0.178346, 0.029167], Schedules.Sigmas("KL Optimal", Model, 10));
    }

    [Fact]
    public void SimpleAndDdim_N10_ReadTheModelsTable()
    {
        CloseAll([14.614641, 8.302803, 5.087763, 3.321083, 2.276463, 1.612886, 1.160578, 0.829860, 0.569285, 0.341674, 0], Schedules.Sigmas("simple", Model, 10));
        CloseAll([8.390685, 5.134431, 3.347764, 2.292854, 1.623692, 1.168216, 0.835653, 0.574050, 0.346187, 0.041314, 0], Schedules.Sigmas("DDIM", Model, 10));
    }

    [Fact]
    public void AlignYourSteps_IsNvidiasList_AtTen_AndLogLinearlyInterpolatedOtherwise()
    {
        CloseAll([14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029, 0], Schedules.Sigmas("Align Your Steps", Model, 11));
        CloseAll([14.615, 8.170651, 5.188100, 3.668090, 2.838839, 2.198445, 1.730658, 1.396, 1.070780, 0.814771, 0.607827, 0.427997, 0.229864, 0.094686, 0.029, 0],
            Schedules.Sigmas("align_your_steps", Model, 15));
    }

    [Fact]
    public void Beta_QuantileMatchesClosedFormAndNumericValues_AndTheScheduleUsesIt()
    {
        // Beta(½, ½) is the arcsine distribution: its quantile is sin²(πp/2).
        foreach (var p in new[] { 0.05, 0.3, 0.5, 0.77, 0.99 })
        {
            Close(Math.Pow(Math.Sin(Math.PI * p / 2), 2), Schedules.BetaQuantile(p, 0.5, 0.5), rel: 1e-9);
        }

        Close(0.039584, Schedules.BetaQuantile(0.1, 0.6, 0.6), rel: 1e-4);
        Close(0.17568, Schedules.BetaQuantile(0.25, 0.6, 0.6), rel: 1e-4);
        Close(0.960415, Schedules.BetaQuantile(0.9, 0.6, 0.6), rel: 1e-4);
        Close(0.5, Schedules.BetaQuantile(0.5, 0.6, 0.6), rel: 1e-12);
        var s = Schedules.Sigmas("Beta", Model, 5);
        var span = Model.SigmaMax - Model.SigmaMin;
        CloseAll([Model.SigmaMax, Model.SigmaMin + (Schedules.BetaQuantile(0.75, 0.6, 0.6) * span), Model.SigmaMin + (0.5 * span),
            Model.SigmaMin + (Schedules.BetaQuantile(0.25, 0.6, 0.6) * span), Model.SigmaMin, 0], s);
    }

    [Fact]
    public void EveryScheduleA1111Lists_RunsWithEverySampler()
    {
        foreach (var schedule in Schedules.Names)
        {
            foreach (var sampler in Sampler.All)
            {
                // UniPC's list leads with the latents' noise level, equal to its grid's first σ in txt2img.
                var sigmas = sampler is UniPc ? sampler.SigmasFor(schedule, Model, 6)[1..] : sampler.SigmasFor(schedule, Model, 6);
                Assert.True(sigmas.Length >= 2 && sigmas.Zip(sigmas.Skip(1)).All(p => p.First > p.Second), $"{sampler.Name} / {schedule}: {string.Join(", ", sigmas)}");
            }
        }
    }

    /// <summary>
    /// Each added sampler on a problem with a known denoiser (data ~ N(0, ½²): D(x, σ) = x·¼/(¼ + σ²)), over σ = 10, 5,
    /// 2, 1, 0.5, 0.1, 0 from x = (3, −2, ½), with a fixed noise sequence. Reference values: k-diffusion's published
    /// algorithms (sample_heun, sample_dpm_2, sample_dpm_2_ancestral, sample_dpmpp_2s_ancestral, sample_dpmpp_2m_sde and
    /// sample_dpmpp_3m_sde with η = 1 and the midpoint solver, sample_lcm, sample_dpmpp_sde with η = 1 and r = ½) written out in double precision in Python.
    /// </summary>
    [Theory]
    [InlineData("Heun", 0.1635380, -0.1090253, 0.0272563)]
    [InlineData("DPM2", 0.1625803, -0.1083869, 0.0270967)]
    [InlineData("DPM2 a", 0.7736842, 0.1831617, -0.5382465)]
    [InlineData("DPM++ 2S a", 0.4778496, 0.1121301, -0.3127615)]
    [InlineData("DPM++ 2M SDE", 0.5520114, 0.1989969, -0.3923321)]
    [InlineData("DPM++ 3M SDE", 0.9223445, 0.1978358, -0.3976155)]
    [InlineData("LCM", 0.2619622, 0.0889168, -0.1602960)]
    [InlineData("DPM++ SDE", -0.1731330, 0.0876206, 0.3628003)]
    public void AddedSamplers_OnAKnownDenoiser_MatchTheirPublishedAlgorithms(string name, double a, double b, double c)
    {
        var sampler = Sampler.Find(name)!;
        Assert.Equal(name, sampler.Name);
        CloseAll([a, b, c], OnKnownDenoiser(sampler, [10, 5, 2, 1, 0.5, 0.1, 0]));
    }

    /// <summary>
    /// DPM fast and DPM adaptive on the known denoiser and noise sequence, over σ from 10 to 0.1 (only the range counts).
    /// Reference: k-diffusion's DPMSolver (dpm_solver_fast and dpm_solver_adaptive with their 1st/2nd/3rd-order steps,
    /// get_ancestral_step and PIDStepSizeController, atol 0.0078, rtol 0.05, h_init 0.05, safety 0.81), written out in
    /// double precision in Python with A1111's η = 1, and with η = 0. Without noise both land near the probability-flow
    /// ODE's exact end, x·√((¼ + 0.1²)/(¼ + 10²)) = (0.1528, −0.1019, 0.0255).
    /// </summary>
    [Fact]
    public void DpmFastAndAdaptive_OnAKnownDenoiser_MatchKDiffusionsDpmSolver()
    {
        double[] six = [10, 5, 2, 1, 0.5, 0.1, 0], seven = [10, 5, 2, 1, 0.5, 0.2, 0.1, 0];
        // Model calls split into third-order steps, the last ones lower: 6 → 3, 2, 1; 7 → 3, 3, 1; 20 → six 3s and a 2.
        Assert.Equal([3, 2, 1], DpmFast.Orders(6));
        Assert.Equal([3, 3, 1], DpmFast.Orders(7));
        Assert.Equal([3, 3, 3, 3, 3, 3, 2], DpmFast.Orders(20));
        Assert.Equal(3, Sampler.Find("DPM fast")!.StepsOver(six));
        CloseAll([0.8077479, -0.8628615, 0.4725891], OnKnownDenoiser(Sampler.Find("DPM fast")!, six));
        CloseAll([0.6944378, -0.5362613, 0.2723829], OnKnownDenoiser(Sampler.Find("k_dpm_fast")!, seven));
        CloseAll([0.1415829, -0.0943886, 0.0235972], OnKnownDenoiser(new DpmFast(eta: 0), six, drawsNoise: false));
        Assert.Equal(6, Calls(new DpmFast(), six));

        // Adaptive: the step count is its own (11 attempts, 8 accepted, 3 calls each with η = 1; 6 of 6 with η = 0).
        CloseAll([0.2884250, -0.0433515, 0.0349467], OnKnownDenoiser(Sampler.Find("DPM adaptive")!, six));
        Assert.Equal(33, Calls(new DpmAdaptive(), six));
        // Without noise the error between the two estimates is a difference of nearly equal fp32 vectors, so the step sizes
        // (and the end) move by a few parts in 10⁴ from the double-precision reference; the path (6 of 6) is the same.
        var smooth = OnKnownDenoiser(new DpmAdaptive(eta: 0), six, drawsNoise: false);
        foreach (var (expected, actual) in new[] { 0.1589100, -0.1059400, 0.0264850 }.Zip(smooth))
        {
            Close(expected, actual, rel: 1e-3);
        }

        Assert.Equal(18, Calls(new DpmAdaptive(eta: 0), six));

        // One step still runs over the model's range (σ_max to σ_min), not from σ_max to itself.
        Assert.Equal([Model.SigmaMax, Model.SigmaMin], Sampler.Find("DPM fast")!.SigmasFor("Automatic", Model, 1));
        Assert.Equal(1, Calls(new DpmFast(), Sampler.Find("DPM fast")!.SigmasFor("Karras", Model, 1)));

        static int Calls(Sampler sampler, double[] sigmas)
        {
            var (calls, drawn) = (0, 0);
            sampler.Run([3f, -2f, 0.5f], sigmas, (xs, sigma, _, eps) =>
            {
                calls++;
                for (var j = 0; j < xs.Length; j++)
                {
                    eps[j] = (float)(xs[j] * sigma / (0.25 + (sigma * sigma)));
                }
            }, target =>
            {
                // The same noise sequence as OnKnownDenoiser's: the adaptive sampler's steps depend on it.
                double[] sequence = [0.3, -1.1, 0.7, 1.9, -0.4, 0.05, -0.8, 1.2, -1.5, 0.9, 0.15, -0.25, 1.05, -0.6, 0.45, -1.3, 0.8, -0.05, 0.6, -0.9];
                for (var j = 0; j < target.Length; j++)
                {
                    target[j] = (float)sequence[drawn++ % sequence.Length];
                }
            }, null, CancellationToken.None);
            return calls;
        }
    }

    /// <summary>
    /// DDIM CFG++: x₀ from the guided prediction at A1111's scale / 12.5, the next point from the unconditional one
    /// (x′ = x₀ + σ′·ε_u). On the known denoiser as the unconditional model and one pulled towards 0.3 as the conditional,
    /// at guidance 7 over σ = 10 … 0.1, 0.0292. Reference: that update written out in double precision in Python.
    /// </summary>
    [Fact]
    public void DdimCfgPp_TakesTheGuidedX0_AndTheUnconditionalDirection()
    {
        var sampler = Sampler.Find("DDIM CFG++")!;
        Assert.Equal(sampler, Sampler.Find("ddim_cfgpp"));
        Assert.True(sampler.NeedsUnconditional);
        Assert.Equal(0.08, sampler.GuidanceScaleFactor, 12);
        var x = new float[] { 3f, -2f, 0.5f };
        var scale = 7 * sampler.GuidanceScaleFactor;
        sampler.RunGuided(x, [10, 5, 2, 1, 0.5, 0.1, 0.0292], (xs, sigma, _, eps, uncond) =>
        {
            for (var j = 0; j < xs.Length; j++)
            {
                var u = xs[j] * sigma / (0.25 + (sigma * sigma));
                var c = (xs[j] - 0.3) * sigma / (0.25 + (sigma * sigma));
                uncond[j] = (float)u;
                eps[j] = (float)(u + (scale * (c - u)));
            }
        }, _ => Assert.Fail("DDIM CFG++ draws no noise"), null, CancellationToken.None);
        CloseAll([0.3786140, 0.1899930, 0.2843035], [.. x.Select(v => (double)v)]);
    }

    /// <summary>
    /// UniPC as A1111 runs it (order 3, bh1, time-uniform, lower orders at the end, no corrector after the last step), on
    /// a model that reads the variance-preserving latents and the timestep (ε = 0.9·x_VP + 0.001·t). Reference: A1111's
    /// solver written out in double precision in Python, in its own variance-preserving space with the model asked at
    /// 1000·t − 1; here the pipeline's σ → timestep interpolation stands in for that, within 10⁻⁴.
    /// </summary>
    [Fact]
    public void UniPc_FollowsA1111sSolver_InTxt2ImgAndImg2Img()
    {
        var schedule = new NoiseSchedule();
        var sampler = Sampler.Find("UniPC")!;
        Assert.Equal(sampler, Sampler.Find("unipc"));
        Assert.Equal(["unipc"], Sampler.AliasesOf("UniPC"));
        Assert.True(sampler.StartsFromUnitNoise);

        void Model(ReadOnlySpan<float> xs, double sigma, int step, Span<float> eps)
        {
            var scale = 1 / Math.Sqrt(1 + (sigma * sigma));
            var t = schedule.TimestepOf(sigma);
            for (var j = 0; j < xs.Length; j++)
            {
                eps[j] = (float)((0.9 * xs[j] * scale) + (0.001 * t));
            }
        }

        // txt2img, 8 steps: the grid runs from σ at t = 1 (timestep 999) to σ at t = 1/1000 (timestep 0), with a lead σ
        // equal to its first; one progress event a step.
        var sigmas = sampler.SigmasFor("Automatic", schedule, 8);
        Assert.Equal(10, sigmas.Length);
        Assert.Equal(8, sampler.StepsOver(sigmas));
        Assert.Equal(14.61464122933365, sigmas[0], 9);
        Assert.Equal(sigmas[0], sigmas[1]);
        Assert.Equal(0.029167158151720367, sigmas[^1], 9);
        var x = new[] { 0.5, -1.2, 0.3, 2.0 }.Select(v => (float)(v * Math.Sqrt(1 + (sigmas[0] * sigmas[0])))).ToArray();
        var steps = new List<int>();
        sampler.Run(x, sigmas, Model, _ => Assert.Fail("UniPC draws no noise"), steps.Add, CancellationToken.None);
        Assert.Equal(Enumerable.Range(0, 8), steps);
        CloseAll([-0.8973780881951953, -2.0729063344727927, -1.035675528933736, 0.1398527173438615], [.. x.Select(v => (double)v)]);

        // A1111 runs as many steps as its timesteps: range(0, 1000, 1000 // 30) has 31.
        Assert.Equal(31, sampler.StepsOver(sampler.SigmasFor("Automatic", schedule, 30)));

        // img2img, 10 steps at strength 0.5 (t_enc 5): noised at timestep 501, solved from t = (401 + 1)/1000 in 5 steps.
        var img2img = sampler.Img2ImgSigmas(sampler.SigmasFor("Automatic", schedule, 10), schedule, 10, 5);
        Assert.Equal(schedule.Sigmas[501], img2img[0]);
        Assert.Equal(5, sampler.StepsOver(img2img));
        double[] init = [0.2, -0.4, 0.1, 0.7], noise = [1.0, -0.5, 0.25, -2.0];
        x = [.. init.Zip(noise, (a, e) => (float)(a + (e * img2img[0])))];
        sampler.Run(x, img2img, Model, _ => Assert.Fail("UniPC draws no noise"), null, CancellationToken.None);
        CloseAll([0.47445659651323424, -0.5304641689533454, 0.038206600537586934, -0.9725966469799632], [.. x.Select(v => (double)v)]);
    }

    /// <summary>
    /// Runs a sampler from x = (3, −2, ½) on the known denoiser (data ~ N(0, ½²): ε(x, σ) = x·σ/(¼ + σ²)) with the fixed
    /// noise sequence, and returns where it ends.
    /// </summary>
    private static double[] OnKnownDenoiser(Sampler sampler, double[] sigmas, bool drawsNoise = true)
    {
        double[] sequence = [0.3, -1.1, 0.7, 1.9, -0.4, 0.05, -0.8, 1.2, -1.5, 0.9, 0.15, -0.25, 1.05, -0.6, 0.45, -1.3, 0.8, -0.05, 0.6, -0.9];
        var next = 0;
        var x = new float[] { 3f, -2f, 0.5f };
        sampler.Run(x, sigmas, (xs, sigma, _, eps) =>
        {
            for (var j = 0; j < xs.Length; j++)
            {
                eps[j] = (float)(xs[j] * sigma / (0.25 + (sigma * sigma)));
            }
        }, target =>
        {
            Assert.True(drawsNoise, $"{sampler.Name} draws no noise");
            for (var j = 0; j < target.Length; j++)
            {
                target[j] = (float)sequence[next++ % sequence.Length];
            }
        }, null, CancellationToken.None);
        return [.. x.Select(v => (double)v)];
    }

    /// <summary>
    /// Restart on the same known denoiser and noise sequence: over 20 Karras steps (σ 14.6 to 0.03) it keeps 9 for one
    /// restart from the σ nearest 0.1 back to the one nearest 2, still 20 steps in all; under 20 steps it is Heun.
    /// Reference: A1111's restart_sampler written out in double precision in Python.
    /// </summary>
    [Fact]
    public void Restart_OnAKnownDenoiser_MatchesA1111sRestartSampler()
    {
        var restart = Sampler.Find("restart")!;
        var karras = Schedules.Karras(0.03, 14.6, 20);
        Assert.Equal(20, restart.StepsOver(karras));
        CloseAll([0.1724494, -0.5598265, 0.3500295], OnKnownDenoiser(restart, karras));
        CloseAll([0.1635380, -0.1090253, 0.0272563], OnKnownDenoiser(restart, [10, 5, 2, 1, 0.5, 0.1, 0]));
    }

    /// <summary>
    /// PLMS on the known denoiser over DDIM-style σs (the last one σ(t = 0), not 0): against A1111's timesteps plms run in
    /// its variance-preserving space (x/√(σ² + 1), ᾱ = 1/(σ² + 1)) in double precision in Python, converted back.
    /// </summary>
    [Fact]
    public void Plms_OnAKnownDenoiser_MatchesA1111sTimestepsPlms()
    {
        var plms = Sampler.Find("plms")!;
        Assert.True(plms.StartsFromUnitNoise);
        CloseAll([0.1521382, -0.1014254, 0.0253564], OnKnownDenoiser(plms, [10, 5, 2, 1, 0.5, 0.1, 0.03], drawsNoise: false));
        Assert.Equal(Sampler.Find("DDIM")!.SigmasFor("Automatic", Model, 10), plms.SigmasFor("Automatic", Model, 10));
    }

    [Fact]
    public void DiscardingSamplers_TakeOneStepMore_WithoutTheNextToLastSigma()
    {
        var karras = Schedules.Sigmas("Karras", Model, 11);
        var dpm2 = Sampler.Find("DPM2")!.SigmasFor("Karras", Model, 10);
        CloseAll([.. karras[..^2], 0], dpm2);
        Assert.Equal(11, dpm2.Length);
        Assert.Equal("Exponential", Sampler.Find("k_dpmpp_3m_sde")!.DefaultSchedule);
    }

    /// <summary>
    /// PyTorch's well-known outputs: torch.manual_seed(0); torch.randn(4, 4), torch.randn(2, 3) and torch.randn(5, 4); and
    /// torch.manual_seed(42); torch.randn(16). They follow from MT19937 and ATen's normal fill (its 16-value Box–Muller
    /// blocks, the refilled tail, and the double path below 16 values).
    /// </summary>
    [Fact]
    public void TorchCpuRandom_GivesTorchRandnsKnownValues()
    {
        static double[] Draw(long seed, int n)
        {
            var values = new float[n];
            new TorchCpuRandom(seed).Fill(values);
            return [.. values.Select(v => (double)v)];
        }

        static void Near(double[] expected, double[] actual)
        {
            Assert.Equal(expected.Length, actual.Length);
            for (var i = 0; i < expected.Length; i++)
            {
                Assert.True(Math.Abs(expected[i] - actual[i]) < 6e-5, $"[{i}] expected {expected[i]}, got {actual[i]}");
            }
        }

        Near([-1.1258, -1.1524, -0.2506, -0.4339, 0.8487, 0.6920, -0.3160, -2.1152, 0.3223, -1.2633, 0.3500, 0.3081, 0.1198, 1.2377, 1.1168, -0.2473], Draw(0, 16));
        Near([1.5410, -0.2934, -2.1788], Draw(0, 3));
        Near([-1.1258, -1.1524, -0.2506, -0.4339, 0.5988, -1.5551, -0.3414, 1.8530, 0.4681, -0.1577, 1.4437, 0.2660, 1.3894, 1.5863, 0.9463, -0.8437,
            0.9318, 1.2590, 2.0050, 0.0537], Draw(0, 20));
        Near([1.9269, 1.4873, 0.9007, -2.1055, 0.6784, -1.2345, -0.0431, -1.6047, -0.7521, 1.6487, -0.3925, -1.4036, -0.7279, -0.5594, -0.7688, 0.7624], Draw(42, 16));
    }

    [Fact]
    public void EulerAncestral_FirstStep_MatchesReference()
    {
        var s = Schedules.DiffusersLinspace(Model, 20);
        var (up, down) = EulerAncestral.AncestralStep(s[0], s[1]);
        Close(7.283028, up);
        Close(7.902668, down);
    }

    [Fact]
    public void DpmPp2M_KarrasCoefficients_MatchReference()
    {
        var s = Schedules.Sigmas("Karras", Model, 20);
        var h0 = Math.Log(s[0]) - Math.Log(s[1]);
        Close(0.802303, s[1] / s[0]);
        Close(-0.197697, Math.Exp(-h0) - 1);
        var h1 = Math.Log(s[1]) - Math.Log(s[2]);
        var r = h0 / h1;
        Close(0.968530, r);
        Close(1.516246, 1 + (1 / (2 * r)));
        Close(-0.516246, -1 / (2 * r));
    }

    /// <summary>The identity-ε UNet (out = its input, and its input is x·c_in): ε = x/√(σ²+1).</summary>
    private static double IdentityRatio(Sampler sampler, double[] sigmas)
    {
        var x = new float[] { 1f, -2f, 0.5f };
        var start = x.ToArray();
        sampler.Run(x, sigmas, (xs, sigma, _, eps) =>
        {
            var cIn = 1 / Math.Sqrt((sigma * sigma) + 1);
            for (var i = 0; i < xs.Length; i++)
            {
                eps[i] = (float)(xs[i] * cIn);
            }
        }, _ => throw new InvalidOperationException("no noise expected"), null, CancellationToken.None);
        var ratios = x.Select((v, i) => v / start[i]).ToArray();
        Assert.All(ratios, r => Close(ratios[0], r, rel: 1e-5));
        return ratios[0];
    }

    [Fact]
    public void IdentityUnet_EndToEnd_MatchesReferenceRatios()
    {
        Close(0.03244451, IdentityRatio(Sampler.Find("Euler")!, Schedules.DiffusersLinspace(Model, 20)));
        Close(0.03244428, IdentityRatio(Sampler.Find("Euler")!, Schedules.Sigmas("Karras", Model, 20)));
        Close(0.03452330, IdentityRatio(Sampler.Find("DPM++ 2M")!, Schedules.Sigmas("Karras", Model, 20)));
        Close(0.03608530, IdentityRatio(Sampler.Find("DPM++ 2M")!, Schedules.DiffusersLinspace(Model, 20)));
    }

    [Fact]
    public void Ddim_LeadingSchedule_MatchesReferenceRatio()
    {
        var ddim = Sampler.Find("DDIM")!;
        var sigmas = ddim.SigmasFor("Automatic", Model, 20);
        Close(Model.Sigmas[951], sigmas[0]);
        Close(Model.Sigmas[1], sigmas[19]);
        Close(Model.Sigmas[0], sigmas[20]);
        // Ratio in DDIM's own x_t space: x_t = x_σ/√(σ²+1) at both ends.
        var inSigmaSpace = IdentityRatio(ddim, sigmas);
        var ratio = inSigmaSpace * Math.Sqrt((sigmas[0] * sigmas[0]) + 1) / Math.Sqrt((sigmas[20] * sigmas[20]) + 1);
        Close(0.49205302, ratio);
    }

    [Theory]
    [InlineData("Euler")]
    [InlineData("DPM++ 2M")]
    [InlineData("LMS")]
    public void ConstantEps_EndsAtInitMinusConstantTimesFirstSigma(string name)
    {
        var sampler = Sampler.Find(name)!;
        var sigmas = Schedules.Sigmas("Karras", Model, 20);
        var x = new float[] { 3f, -1f };
        const float c = 0.25f;
        sampler.Run(x, sigmas, (_, _, _, eps) => eps.Fill(c), _ => { }, null, CancellationToken.None);
        Close(3 - (c * sigmas[0]), x[0], rel: name == "LMS" ? 1e-3 : 1e-5);
        Close(-1 - (c * sigmas[0]), x[1], rel: name == "LMS" ? 1e-3 : 1e-5);
    }

    [Fact]
    public void ZeroEps_EulerLeavesLatentsUnchanged()
    {
        var x = new float[] { 0.3f, 0.7f };
        Sampler.Find("Euler")!.Run(x, Schedules.Sigmas("Normal", Model, 10), (_, _, _, eps) => eps.Clear(), _ => { }, null, CancellationToken.None);
        Assert.Equal([0.3f, 0.7f], x);
    }

    [Fact]
    public void Find_NamesAliasesAndLegacyCombinedNames()
    {
        Assert.Equal("Euler a", Sampler.Find("k_euler_a")!.Name);
        Assert.Equal("DPM++ 2M", Sampler.Find("dpm++ 2m")!.Name);
        Assert.Null(Sampler.Find("UniPC 9000"));
        Assert.Equal(("DPM++ 2M", "Karras"), Sampler.SplitLegacy("DPM++ 2M Karras"));
        Assert.Equal(("Euler a", (string?)null), Sampler.SplitLegacy("Euler a"));
        Assert.Equal("Karras", Sampler.Find("DPM++ 2M")!.DefaultSchedule);
    }

    [Fact]
    public void Cancellation_StopsBetweenSteps()
    {
        using var cts = new CancellationTokenSource();
        var calls = 0;
        var x = new float[4];
        Assert.Throws<OperationCanceledException>(() => Sampler.Find("Euler")!.Run(x, Schedules.Sigmas("Normal", Model, 20), (_, _, step, eps) =>
        {
            calls++;
            if (step == 4)
            {
                cts.Cancel();
            }

            eps.Clear();
        }, _ => { }, null, cts.Token));
        Assert.Equal(5, calls);
    }
}
