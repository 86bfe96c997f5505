namespace Atelier.Engine.Sampling;

/// <summary>
/// The training noise schedule of Stable Diffusion 1.x/2.x: 1000 steps, "scaled_linear" betas from 0.00085 to
/// 0.012, computed in double precision (as LDM, AUTOMATIC1111 and ComfyUI do).
/// </summary>
public sealed class NoiseSchedule
{
    public NoiseSchedule(int trainSteps = 1000, double betaStart = 0.00085, double betaEnd = 0.012)
    {
        AlphasCumprod = new double[trainSteps];
        Sigmas = new double[trainSteps];
        LogSigmas = new double[trainSteps];
        double product = 1;
        var a = Math.Sqrt(betaStart);
        var b = Math.Sqrt(betaEnd);
        for (var i = 0; i < trainSteps; i++)
        {
            var root = a + ((b - a) * i / (trainSteps - 1));
            product *= 1 - (root * root);
            AlphasCumprod[i] = product;
            Sigmas[i] = Math.Sqrt((1 - product) / product);
            LogSigmas[i] = Math.Log(Sigmas[i]);
        }
    }

    /// <summary>ᾱ for each training timestep.</summary>
    public double[] AlphasCumprod { get; }

    /// <summary>σ = √((1 − ᾱ)/ᾱ) for each training timestep, increasing.</summary>
    public double[] Sigmas { get; }

    private double[] LogSigmas { get; }

    public int TrainSteps => Sigmas.Length;
    public double SigmaMin => Sigmas[0];
    public double SigmaMax => Sigmas[^1];

    /// <summary>σ at a fractional timestep, interpolating linearly in σ (diffusers' Euler).</summary>
    public double SigmaAtLinear(double t)
    {
        var lo = (int)Math.Floor(t);
        var hi = Math.Min(lo + 1, TrainSteps - 1);
        var w = t - lo;
        return (Sigmas[lo] * (1 - w)) + (Sigmas[hi] * w);
    }

    /// <summary>σ at a fractional timestep, interpolating in log σ (k-diffusion's discrete schedule).</summary>
    public double SigmaAtLog(double t)
    {
        var lo = (int)Math.Floor(t);
        var hi = Math.Min(lo + 1, TrainSteps - 1);
        var w = t - lo;
        return Math.Exp((LogSigmas[lo] * (1 - w)) + (LogSigmas[hi] * w));
    }

    /// <summary>The training timestep whose σ is nearest (A1111's <c>argmin(|sigmas − σ|)</c>).</summary>
    public int NearestTimestep(double sigma)
    {
        var i = Array.BinarySearch(Sigmas, sigma);
        if (i >= 0)
        {
            return i;
        }

        i = ~i;
        return i == 0 ? 0 : i >= Sigmas.Length ? Sigmas.Length - 1 : sigma - Sigmas[i - 1] <= Sigmas[i] - sigma ? i - 1 : i;
    }

    /// <summary>The fractional timestep of a σ, interpolating in log σ (k-diffusion's sigma_to_t).</summary>
    public double TimestepOf(double sigma)
    {
        if (sigma <= 0)
        {
            return 0;
        }

        var logSigma = Math.Log(sigma);
        if (logSigma <= LogSigmas[0])
        {
            return 0;
        }

        if (logSigma >= LogSigmas[^1])
        {
            return TrainSteps - 1;
        }

        // The first log-sigma at or above: a binary search over the ascending table (no closure, no scan per step).
        var hi = Array.BinarySearch(LogSigmas, logSigma);
        if (hi >= 0)
        {
            return hi;
        }

        hi = ~hi;
        var lo = hi - 1;
        var w = (logSigma - LogSigmas[lo]) / (LogSigmas[hi] - LogSigmas[lo]);
        return lo + w;
    }
}
