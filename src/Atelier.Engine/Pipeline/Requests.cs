namespace Atelier.Engine.Pipeline;

/// <summary>One generation, in AUTOMATIC1111's terms and defaults.</summary>
public sealed record GenerationRequest
{
    public string Prompt { get; init; } = "";
    public string NegativePrompt { get; init; } = "";
    /// <summary>-1 picks a random seed (reported back).</summary>
    public long Seed { get; init; } = -1;
    public string Sampler { get; init; } = "Euler a";
    public string Schedule { get; init; } = "Automatic";
    public int Steps { get; init; } = 20;
    public double CfgScale { get; init; } = 7.0;
    public int Width { get; init; } = 512;
    public int Height { get; init; } = 512;
    public int BatchSize { get; init; } = 1;
    public int Iterations { get; init; } = 1;
    /// <summary>For img2img: the init image as RGB bytes with its size, and how much of it to noise away (0..1).</summary>
    public (byte[] Rgb, int Width, int Height)? InitImage { get; init; }
    public double DenoisingStrength { get; init; } = 0.75;
}

/// <summary>Progress after a denoising step.</summary>
public sealed record GenerationProgress(int Image, int ImageCount, int Step, int Steps, TimeSpan Elapsed, TimeSpan Eta);

public sealed record GeneratedImage(byte[] Png, long Seed, string Infotext);

public sealed record GenerationResult(IReadOnlyList<GeneratedImage> Images, long FirstSeed, IReadOnlyList<long> Seeds, string ModelHash, string ModelName);

/// <summary>A request the engine cannot run as given (the message says what to change).</summary>
public sealed class EngineRequestException(string message) : ArgumentException(message);
