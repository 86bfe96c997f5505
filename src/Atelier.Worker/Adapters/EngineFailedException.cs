namespace Atelier.Worker.Adapters;

/// <summary>The engine failed the job; the message is the engine's own (it becomes <c>errMessage</c> of <c>b_predict_predictfail</c>).</summary>
public sealed class EngineFailedException(string message, Exception? inner = null) : Exception(message, inner);
