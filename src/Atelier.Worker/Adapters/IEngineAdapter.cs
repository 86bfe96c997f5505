namespace Atelier.Worker.Adapters;

/// <summary>
/// An engine a worker runs jobs on: the built-in one in process, or a client of an AUTOMATIC1111 or ComfyUI server the
/// user already runs. Chosen by <see cref="Name"/>.
/// </summary>
public interface IEngineAdapter : IDisposable
{
    string Name { get; }
    Task<IReadOnlyList<EngineModel>> ListModelsAsync(CancellationToken ct);
    Task<EngineResult> GenerateAsync(EngineJob job, IProgress<EngineProgress>? progress, CancellationToken ct);
}
