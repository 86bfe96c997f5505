using Atelier.Contracts.Workers;
using Atelier.Worker.Delivery;

namespace Atelier.Worker.Adapters;

/// <summary>
/// An engine that runs models whose files the worker fetched into its model cache: the built-in engine (ONNX folders,
/// loaded from the cache) and AUTOMATIC1111 given its models folder (the file copied there, then refresh-checkpoints).
/// </summary>
public interface IModelInstaller
{
    /// <summary>Whether this engine takes fetched models at all (AUTOMATIC1111 only with <c>--a1111-models</c>).</summary>
    bool CanInstall { get; }

    /// <summary>
    /// Null when this engine can run the version; else why not, in words for the API client, starting with the model type
    /// the engine needs (it fills <c>${Type}</c> of <c>p_model_modelfiletypenotsupport</c>, which the job fails with at once).
    /// </summary>
    string? CannotRun(LeasedModel model);

    /// <summary>Puts the fetched model where the engine takes it from; returns how the job names it.</summary>
    Task<InstalledModel> InstallAsync(LeasedModel model, CachedModel files, CancellationToken ct);
}

/// <summary>A fetched model as an engine job names it: its reference, and for the built-in engine the folder it loads.</summary>
public sealed record InstalledModel(string Reference, ModelFolder? Folder = null);

/// <summary>A model folder the built-in engine loads as it is (a fetched model in the cache), by its UNet's SHA-256.</summary>
public sealed record ModelFolder(string Name, string Folder, string Sha256);

/// <summary>The engine cannot run the job's model version; the job fails at once with <c>p_model_modelfiletypenotsupport</c>.</summary>
public sealed class ModelNotRunnableException(string message) : Exception(message);
