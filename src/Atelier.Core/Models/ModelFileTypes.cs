using Atelier.Contracts.Errors;

namespace Atelier.Core.Models;

/// <summary>Which files each model type takes: by extension, and by content (a renamed file is refused).</summary>
public static class ModelFileTypes
{
    /// <summary>File formats (by content) each model type accepts, and the extensions that announce them.</summary>
    private static readonly Dictionary<string, string[]> AllowedExtensions = new()
    {
        ["checkpoint"] = [".safetensors", ".ckpt"],
        ["lora"] = [".safetensors", ".pt"],
        ["embedding"] = [".safetensors", ".pt", ".bin"],
        ["vae"] = [".safetensors", ".ckpt", ".pt"],
        ["controlnet"] = [".safetensors", ".pth"],
        ["upscaler"] = [".pth", ".pt", ".safetensors"],
        ["onnx"] = [".onnx", ".onnx_data", ".pb", ".json", ".txt"],
    };

    private static readonly Dictionary<string, string[]> FormatsOfExtension = new()
    {
        [".safetensors"] = ["safetensors"],
        [".ckpt"] = ["pickle"],
        [".pt"] = ["pickle"],
        [".pth"] = ["pickle"],
        [".bin"] = ["pickle", "unknown"],
        [".onnx"] = ["onnx"],
        [".onnx_data"] = ["unknown", "onnx", "text", "json", "pickle"],
        [".pb"] = ["unknown", "onnx", "text", "json", "pickle"],
        [".json"] = ["json"],
        [".txt"] = ["text", "json"],
    };

    /// <summary>The extension must be one the model type accepts: <c>p_model_modelfiletypenotsupport</c> names those.</summary>
    internal static string CheckExtension(string modelType, string alias)
    {
        var allowed = AllowedExtensions[modelType];
        var extension = Path.GetExtension(alias).ToLowerInvariant();
        if (!AcceptsFile(modelType, alias))
        {
            throw AtelierException.With(ErrorCatalog.p_model_modelfiletypenotsupport, "Type", string.Join("/", allowed));
        }

        return extension;
    }

    /// <summary>Whether a model of this type takes a file of this name (by its extension).</summary>
    public static bool AcceptsFile(string modelType, string fileName) =>
        AllowedExtensions.TryGetValue(modelType, out var allowed) && allowed.Contains(Path.GetExtension(fileName).ToLowerInvariant());

    /// <summary>The content must be what the extension says (a renamed file is refused).</summary>
    public static void CheckContent(string modelType, string extension, string format)
    {
        if (!FormatsOfExtension[extension].Contains(format))
        {
            throw new AtelierException(ErrorCatalog.p_model_modelfiletypenotsupport,
                new Dictionary<string, string> { ["Type"] = string.Join("/", AllowedExtensions[modelType]) },
                errCode: ErrCodes.ContentMismatch, errMessage: $"a {extension} file, but its content is {format}");
        }
    }

    public static string ExtensionOf(string alias) => Path.GetExtension(alias).ToLowerInvariant();
}
