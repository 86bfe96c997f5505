namespace Atelier.Engine.Sampling;

/// <summary>The σ schedules of a sampling run, named as AUTOMATIC1111 names them.</summary>
public static class Schedules
{
    public static readonly string[] Names = ["Automatic", "Karras", "Normal"];

    /// <summary>
    /// n σ values from high to low, then a final 0. "Normal" (and "Automatic" for Euler, Euler a, LMS) is the
    /// model's discrete schedule at timesteps linspace(999, 0, n), interpolated in log σ; "Karras" is the ρ = 7
    /// schedule between the model's σ_min and σ_max.
    /// </summary>
    public static double[] Sigmas(string schedule, NoiseSchedule model, int steps) => schedule switch
    {
        "Karras" => Karras(model.SigmaMin, model.SigmaMax, steps),
        "Normal" or "Automatic" => Normal(model, steps),
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
