using System.Text.Json;
using System.Text.RegularExpressions;
using Atelier.Contracts.Errors;

namespace Atelier.Core.Jobs;

/// <summary>
/// A ComfyUI workflow job (<c>POST /api/v1/predict/comfyui</c>): <c>{workflow, images}</c>, the workflow in ComfyUI's API
/// format (node id → <c>{class_type, inputs}</c>, what ComfyUI's "Save (API Format)" writes) and the pictures its
/// LoadImage nodes name (file name → base64). Checked before it is queued; a ComfyUI worker runs it as it is.
/// </summary>
public static partial class ComfyWorkflow
{
    public const string Kind = Contracts.Workers.JobKinds.ComfyWorkflow;
    public const int MaxNodes = 500;
    public const int MaxImages = 16;

    private static readonly string[] Outputs = ["SaveImage", "PreviewImage"];
    private static readonly string[] LatentSources = ["EmptyLatentImage", "EmptySD3LatentImage"];

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(png|jpg|jpeg|webp)$", RegexOptions.IgnoreCase)]
    private static partial Regex ImageName();

    public static void Check(JsonElement input, GenerationOptions limits)
    {
        GenerationInput.CheckText(input, "input");
        if (!input.TryGetProperty("workflow", out var workflow) || workflow.ValueKind != JsonValueKind.Object)
        {
            throw AtelierException.InvalidInput("workflow", "must be a ComfyUI workflow in API format: an object of nodes {class_type, inputs}");
        }

        var nodes = 0;
        var saves = false;
        foreach (var node in workflow.EnumerateObject())
        {
            if (++nodes > MaxNodes)
            {
                throw AtelierException.InvalidInput("workflow", $"has more than {MaxNodes} nodes");
            }

            if (node.Value.ValueKind != JsonValueKind.Object || !node.Value.TryGetProperty("class_type", out var type) || type.ValueKind != JsonValueKind.String
                || type.GetString()!.Length is 0 or > 100 || !node.Value.TryGetProperty("inputs", out var inputs) || inputs.ValueKind != JsonValueKind.Object)
            {
                throw AtelierException.InvalidInput($"workflow.{node.Name}", "must be a node {class_type, inputs} (export the workflow with ComfyUI's \"Save (API Format)\")");
            }

            saves |= Outputs.Contains(type.GetString());
        }

        if (!saves)
        {
            throw AtelierException.InvalidInput("workflow", "has no SaveImage or PreviewImage node, so it makes no pictures");
        }

        // A loader reads only the pictures sent with the job: never a file already on the ComfyUI server (another
        // job's input or output there).
        var given = input.TryGetProperty("images", out var sent) && sent.ValueKind == JsonValueKind.Object
            ? sent.EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal) : [];
        foreach (var node in workflow.EnumerateObject())
        {
            if (Type(node.Value) is { } type && type.StartsWith("LoadImage", StringComparison.Ordinal))
            {
                foreach (var field in node.Value.GetProperty("inputs").EnumerateObject().Where(f => f.Name is "image" or "mask"))
                {
                    if (field.Value.ValueKind != JsonValueKind.String || !given.Contains(field.Value.GetString()!))
                    {
                        throw AtelierException.InvalidInput($"workflow.{node.Name}.inputs.{field.Name}", "must name one of the pictures in images (a loader reads only the job's own pictures)");
                    }
                }
            }

            // The size of what it makes, as far as its empty latents say.
            if (LatentSources.Contains(Type(node.Value)))
            {
                var inputs = node.Value.GetProperty("inputs");
                foreach (var side in new[] { "width", "height" })
                {
                    if (inputs.TryGetProperty(side, out var v) && v.ValueKind == JsonValueKind.Number && (!v.TryGetInt32(out var n) || n is < 16 or > GenerationInput.MaxSide))
                    {
                        throw AtelierException.InvalidInput($"workflow.{node.Name}.inputs.{side}", $"must be between 16 and {GenerationInput.MaxSide}");
                    }
                }
            }
        }

        if (input.TryGetProperty("images", out var images) && images.ValueKind != JsonValueKind.Null)
        {
            if (images.ValueKind != JsonValueKind.Object)
            {
                throw AtelierException.InvalidInput("images", "must be an object of file name → base64 picture");
            }

            var count = 0;
            foreach (var image in images.EnumerateObject())
            {
                if (++count > MaxImages)
                {
                    throw AtelierException.InvalidInput("images", $"holds more than {MaxImages} pictures");
                }

                if (!ImageName().IsMatch(image.Name))
                {
                    throw AtelierException.InvalidInput($"images.{image.Name}", "must be a plain file name ending in .png, .jpg, .jpeg or .webp");
                }

                if (image.Value.ValueKind != JsonValueKind.String)
                {
                    throw AtelierException.InvalidInput($"images.{image.Name}", "must be a base64 picture");
                }

                GenerationInput.CheckImage(image.Value.GetString()!, $"images.{image.Name}", limits);
            }
        }

        if (ImagesOf(input) > GenerationInput.MaxImagesPerJob)
        {
            throw AtelierException.InvalidInput("workflow", $"its empty latents make more than {GenerationInput.MaxImagesPerJob} pictures");
        }
    }

    /// <summary>How many pictures it makes, as far as its empty latents say (their batch sizes; at least 1): what it costs in image credits.</summary>
    public static int ImagesOf(JsonElement input)
    {
        long total = 0;
        foreach (var node in Nodes(input))
        {
            if (LatentSources.Contains(Type(node)) && node.GetProperty("inputs").TryGetProperty("batch_size", out var b) && b.ValueKind == JsonValueKind.Number)
            {
                total += b.TryGetInt32(out var n) ? Math.Max(1, n) : int.MaxValue;
            }
        }

        return (int)Math.Clamp(total, 1, int.MaxValue);
    }

    /// <summary>Every text the workflow's nodes take literally (any string input: prompts of every encoder, string nodes): what content safety reads.</summary>
    public static string Texts(JsonElement input) => string.Join("\n", Nodes(input).SelectMany(n => n.GetProperty("inputs").EnumerateObject())
        .Where(i => i.Value.ValueKind == JsonValueKind.String).Select(i => i.Value.GetString()));

    /// <summary>The checkpoint its first CheckpointLoaderSimple loads, without the file's extension (the registry's name for it), or null.</summary>
    public static string? CheckpointOf(JsonElement input) =>
        Nodes(input).Where(n => Type(n) == "CheckpointLoaderSimple").Select(n => n.GetProperty("inputs").TryGetProperty("ckpt_name", out var c) && c.ValueKind == JsonValueKind.String
            ? Path.GetFileNameWithoutExtension(c.GetString()) : null).FirstOrDefault(c => c is not null);

    private static IEnumerable<JsonElement> Nodes(JsonElement input) =>
        input.TryGetProperty("workflow", out var w) && w.ValueKind == JsonValueKind.Object
            ? w.EnumerateObject().Select(p => p.Value).Where(v => v.ValueKind == JsonValueKind.Object && v.TryGetProperty("inputs", out var i) && i.ValueKind == JsonValueKind.Object)
            : [];

    private static string? Type(JsonElement node) => node.TryGetProperty("class_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
}
