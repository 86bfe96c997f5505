namespace Atelier.Worker.A1111;

/// <summary>Configuration of <c>atelier engine</c> (section <c>Atelier:Engine</c>).</summary>
public sealed class EngineOptions
{
    public const string SectionName = "Atelier:Engine";
    public string Urls { get; set; } = "http://127.0.0.1:7860";
    /// <summary>Folder of diffusers ONNX model folders; the demo model is built here when it holds none.</summary>
    public string ModelsDirectory { get; set; } = "data/models";
    public long MemoryBudgetBytes { get; set; } = 8L * 1024 * 1024 * 1024;
    public bool UseCuda { get; set; }
}
