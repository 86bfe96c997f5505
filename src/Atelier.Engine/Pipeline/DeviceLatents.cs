using Atelier.Engine.Onnx;
using Atelier.Engine.Sampling;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Atelier.Engine.Pipeline;

/// <summary>
/// The sampler's arithmetic as three small ONNX graphs that run on the pipeline's device, so that a sampler with a
/// <see cref="Sampler.LinearPlan"/> keeps its latents there between steps:
/// <list type="bullet">
/// <item><c>prepare</c>: the first latents in (from the host, once per pass), the UNet's first input and a zero tensor out;</item>
/// <item><c>step</c>: the UNet's prediction (guidance applied), the linear update of a <see cref="LinearStep"/> stage, and
/// the UNet's next input (scaled by c_in, doubled for guidance, in the UNet's element type);</item>
/// <item><c>read</c>: the latents back to the host (the end of a pass, or a preview).</item>
/// </list>
/// The scalars travel in one 9-float tensor <c>k</c>: guidance scale, σ, then X, Eps, Denoised, Previous, Noise, Point,
/// and the next stage's c_in. Per stage only <c>k</c>, the timestep and an ancestral stage's noise cross to the device.
/// </summary>
internal sealed class LatentGraphs : IDisposable
{
    private const int K = 9;
    private readonly InferenceSession _prepareGuided;
    private readonly InferenceSession _prepareSingle;
    private readonly InferenceSession _stepGuided;
    private readonly InferenceSession _stepSingle;

    public LatentGraphs(SessionOptions options, TensorElementType unetType)
    {
        var half = unetType == TensorElementType.Float16;
        _prepareGuided = new InferenceSession(Build(prepare: true, guided: true, half), options);
        _prepareSingle = new InferenceSession(Build(prepare: true, guided: false, half), options);
        _stepGuided = new InferenceSession(Build(prepare: false, guided: true, half), options);
        _stepSingle = new InferenceSession(Build(prepare: false, guided: false, half), options);
        Read = new InferenceSession(new OnnxGraph()
            .Input("x", OnnxGraph.ElementFloat, 1, 4, "h", "w").Output("y", OnnxGraph.ElementFloat, 1, 4, "h", "w")
            .Node("Identity", ["x"], ["y"]).ToModel("atelier_latents_read"), options);
    }

    public InferenceSession Prepare(bool guided) => guided ? _prepareGuided : _prepareSingle;
    public InferenceSession Step(bool guided) => guided ? _stepGuided : _stepSingle;
    public InferenceSession Read { get; }

    private static byte[] Build(bool prepare, bool guided, bool half)
    {
        var unet = half ? OnnxGraph.ElementFloat16 : OnnxGraph.ElementFloat;
        var batch = guided ? 2 : 1;
        var g = new OnnxGraph()
            .Input("x", OnnxGraph.ElementFloat, 1, 4, "h", "w")
            .Input("k", OnnxGraph.ElementFloat, K);
        string[] scalars = ["cfg", "sigma", "a_x", "a_eps", "a_den", "a_prev", "a_noise", "a_point", "c_in"];
        for (var i = prepare ? K - 1 : 0; i < K; i++)
        {
            g.ConstantInt64($"i{i}", [i]).Node("Gather", ["k", $"i{i}"], [scalars[i]], ("axis", 0L));
        }

        string next;
        if (prepare)
        {
            g.Output("x_next", OnnxGraph.ElementFloat, 1, 4, "h", "w").Output("zero", OnnxGraph.ElementFloat, 1, 4, "h", "w")
                .Constant("nought", [0f])
                .Node("Identity", ["x"], ["x_next"])
                .Node("Mul", ["x", "nought"], ["zero"]);
            next = "x";
        }
        else
        {
            g.Input("out", unet, batch, 4, "h", "w")
                .Input("p", OnnxGraph.ElementFloat, 1, 4, "h", "w")
                .Input("old", OnnxGraph.ElementFloat, 1, 4, "h", "w")
                .Input("noise", OnnxGraph.ElementFloat, 1, 4, "h", "w")
                .Output("x_next", OnnxGraph.ElementFloat, 1, 4, "h", "w")
                .Output("denoised", OnnxGraph.ElementFloat, 1, 4, "h", "w");
            var prediction = "out";
            if (half)
            {
                g.Node("Cast", ["out"], ["out_f"], ("to", (long)OnnxGraph.ElementFloat));
                prediction = "out_f";
            }

            if (guided)
            {
                // Classifier-free guidance: u + s·(c − u), the unconditional half first.
                g.Node("Split", [prediction], ["uncond", "cond"], ("axis", 0L))
                    .Node("Sub", ["cond", "uncond"], ["delta"])
                    .Node("Mul", ["delta", "cfg"], ["delta_s"])
                    .Node("Add", ["uncond", "delta_s"], ["eps"]);
            }
            else
            {
                g.Node("Identity", [prediction], ["eps"]);
            }

            // x₀ of the point the model ran on (the step's latents, or a stage's point).
            g.Node("Mul", ["eps", "sigma"], ["sigma_eps"])
                .Node("Sub", ["p", "sigma_eps"], ["denoised"])
                .Node("Mul", ["x", "a_x"], ["t_x"])
                .Node("Mul", ["eps", "a_eps"], ["t_eps"])
                .Node("Mul", ["denoised", "a_den"], ["t_den"])
                .Node("Mul", ["old", "a_prev"], ["t_prev"])
                .Node("Mul", ["noise", "a_noise"], ["t_noise"])
                .Node("Mul", ["p", "a_point"], ["t_point"])
                .Node("Sum", ["t_x", "t_eps", "t_den", "t_prev", "t_noise", "t_point"], ["x_next"]);
            next = "x_next";
        }

        // The UNet's next input: the latents × c_in, once per half of the guided batch, in its element type.
        g.Output("sample", unet, batch, 4, "h", "w").Node("Mul", [next, "c_in"], ["scaled"]);
        var pair = "scaled";
        if (guided)
        {
            g.Node("Concat", ["scaled", "scaled"], ["pair"], ("axis", 0L));
            pair = "pair";
        }

        g.Node(half ? "Cast" : "Identity", [pair], ["sample"], half ? [("to", (long)OnnxGraph.ElementFloat16)] : []);
        return g.ToModel(prepare ? "atelier_latents_prepare" : "atelier_latents_step");
    }

    public void Dispose()
    {
        _prepareGuided.Dispose();
        _prepareSingle.Dispose();
        _stepGuided.Dispose();
        _stepSingle.Dispose();
        Read.Dispose();
    }
}

/// <summary>
/// One sampling pass with the latents on the device: buffers allocated there once per pass (two latents and two
/// previous predictions, swapped each step; the UNet's input and output; a zero tensor), bound by name. The host's
/// latents are read back at the end of the pass, and for a preview when one is asked for.
/// </summary>
internal sealed class DeviceLatentsPass : IDisposable
{
    private readonly LatentGraphs _graphs;
    private readonly InferenceSession _unet;
    private readonly RunOptions _runOptions;
    private readonly bool _guided;
    private readonly OrtValue[] _x;
    private readonly OrtValue[] _previous;
    private readonly OrtValue[] _points;
    private readonly OrtValue _zero;
    private readonly OrtValue _sample;
    private readonly OrtValue _out;
    private readonly float[] _k = new float[9];
    private readonly OrtValue _kValue;
    private readonly float[] _noise;
    private readonly OrtValue _noiseValue;
    private readonly OrtIoBinding _unetBinding;
    private readonly OrtIoBinding _stepBinding;
    private readonly OrtIoBinding _readBinding;
    private readonly long[] _shape;
    private readonly OrtValue _timestep;
    private readonly Lock _gate = new();
    private int _current;
    private bool _live;

    public DeviceLatentsPass(LatentGraphs graphs, InferenceSession unet, OrtAllocator allocator, TensorElementType unetType, OrtValue states,
        OrtValue timestep, bool guided, int h, int w, RunOptions runOptions, IReadOnlyList<(string Name, OrtValue Value)>? extra = null)
    {
        _timestep = timestep;
        _graphs = graphs;
        _unet = unet;
        _runOptions = runOptions;
        _guided = guided;
        _shape = [1, 4, h, w];
        long[] batchShape = [guided ? 2 : 1, 4, h, w];
        _x = [Allocate(allocator, TensorElementType.Float, _shape), Allocate(allocator, TensorElementType.Float, _shape)];
        _previous = [Allocate(allocator, TensorElementType.Float, _shape), Allocate(allocator, TensorElementType.Float, _shape)];
        _points = [Allocate(allocator, TensorElementType.Float, _shape), Allocate(allocator, TensorElementType.Float, _shape)];
        _zero = Allocate(allocator, TensorElementType.Float, _shape);
        _sample = Allocate(allocator, unetType, batchShape);
        _out = Allocate(allocator, unetType, batchShape);
        _kValue = OrtValue.CreateTensorValueFromMemory(_k, [_k.Length]);
        _noise = new float[4 * h * w];
        _noiseValue = OrtValue.CreateTensorValueFromMemory(_noise, _shape);
        _unetBinding = unet.CreateIoBinding();
        _unetBinding.BindInput("encoder_hidden_states", states); // copied to the device once, here
        foreach (var (name, value) in extra ?? [])
        {
            _unetBinding.BindInput(name, value); // SDXL's text_embeds and time_ids, likewise
        }

        _unetBinding.BindInput("sample", _sample);
        _unetBinding.BindOutput("out_sample", _out);
        _stepBinding = graphs.Step(guided).CreateIoBinding();
        _stepBinding.BindInput("out", _out);
        _stepBinding.BindOutput("sample", _sample);
        _readBinding = graphs.Read.CreateIoBinding();
    }

    /// <summary>Told each time the latents are copied back to the host (once per pass, plus previews).</summary>
    public Action? OnReadback { get; init; }

    private static OrtValue Allocate(OrtAllocator allocator, TensorElementType type, long[] shape) =>
        OrtValue.CreateAllocatedTensorValue(allocator, type, shape);

    /// <summary>
    /// Runs the pass over <paramref name="x"/> (read from the host at the start, written back at the end, also when a
    /// skip ends it early): the stages of <paramref name="plan"/>, one UNet call each. <paramref name="setTimestep"/>
    /// writes the timestep tensor for a σ; <paramref name="onStep"/> is told after each stage that ends a step.
    /// </summary>
    public void Run(float[] x, LinearStep[] plan, double cfg, Action<double> setTimestep, NoiseSource noise,
        Func<double, float> cIn, Action<int>? onStep, CancellationToken ct)
    {
        using (var prepare = _graphs.Prepare(_guided).CreateIoBinding())
        using (var first = OrtValue.CreateTensorValueFromMemory(x, _shape))
        {
            _k[^1] = cIn(plan[0].Sigma);
            prepare.BindInput("x", first);
            prepare.BindInput("k", _kValue);
            prepare.BindOutput("x_next", _x[0]);
            prepare.BindOutput("zero", _zero);
            prepare.BindOutput("sample", _sample);
            _graphs.Prepare(_guided).RunWithBinding(_runOptions, prepare);
        }

        lock (_gate)
        {
            _current = 0;
            _live = true;
        }

        try
        {
            var point = -1; // the stage's point: -1 for the step's latents, else which of _points
            var step = 0;
            for (var s = 0; s < plan.Length; s++)
            {
                if (point < 0)
                {
                    ct.ThrowIfCancellationRequested();
                }

                var stage = plan[s];
                lock (_gate)
                {
                    setTimestep(stage.Sigma);
                    _unetBinding.BindInput("timestep", _timestep);
                    _unet.RunWithBinding(_runOptions, _unetBinding);
                    if (stage.Noise != 0)
                    {
                        noise(_noise);
                    }

                    (_k[0], _k[1], _k[2], _k[3], _k[4], _k[5], _k[6], _k[7]) = ((float)cfg, (float)stage.Sigma, (float)stage.X, (float)stage.Eps,
                        (float)stage.Denoised, (float)stage.Previous, (float)stage.Noise, (float)stage.Point);
                    _k[8] = s + 1 < plan.Length ? cIn(plan[s + 1].Sigma) : 1;
                    _stepBinding.BindInput("k", _kValue);
                    _stepBinding.BindInput("x", _x[_current]);
                    _stepBinding.BindInput("p", point < 0 ? _x[_current] : _points[point]);
                    _stepBinding.BindInput("old", s == 0 ? _zero : _previous[(s + 1) % 2]);
                    _stepBinding.BindInput("noise", stage.Noise != 0 ? _noiseValue : _zero);
                    var made = stage.EndsStep ? 1 - _current : point == 0 ? 1 : 0;
                    _stepBinding.BindOutput("x_next", stage.EndsStep ? _x[made] : _points[made]);
                    _stepBinding.BindOutput("denoised", _previous[s % 2]);
                    _graphs.Step(_guided).RunWithBinding(_runOptions, _stepBinding);
                    (_current, point) = stage.EndsStep ? (made, -1) : (_current, made);
                }

                if (stage.EndsStep)
                {
                    onStep?.Invoke(step++);
                }
            }
        }
        finally
        {
            if (!_runOptions.Terminate)
            {
                ReadInto(x);
            }
        }
    }

    /// <summary>A copy of the current latents, or null once the pass has ended (safe from any thread).</summary>
    public float[]? Snapshot()
    {
        var copy = new float[(int)(_shape[1] * _shape[2] * _shape[3])];
        lock (_gate)
        {
            if (!_live)
            {
                return null;
            }

            ReadCore(copy);
        }

        return copy;
    }

    private void ReadInto(float[] x)
    {
        lock (_gate)
        {
            ReadCore(x);
            _live = false;
        }
    }

    private void ReadCore(float[] target)
    {
        using var host = OrtValue.CreateTensorValueFromMemory(target, _shape);
        _readBinding.BindInput("x", _x[_current]);
        _readBinding.BindOutput("y", host);
        _graphs.Read.RunWithBinding(_runOptions, _readBinding);
        _readBinding.SynchronizeBoundOutputs();
        OnReadback?.Invoke();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _live = false;
        }

        _unetBinding.Dispose();
        _stepBinding.Dispose();
        _readBinding.Dispose();
        foreach (var v in (OrtValue[])[.. _x, .. _previous, .. _points, _zero, _sample, _out, _kValue, _noiseValue])
        {
            v.Dispose();
        }
    }
}
