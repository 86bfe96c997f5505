using System.Security.Cryptography;
using Atelier.Engine.Onnx;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>A model registered through the API for model delivery: its files (path → bytes) and the primary file's hash.</summary>
public sealed record RegisteredModel(string Name, string ModelId, string VersionId, IReadOnlyDictionary<string, byte[]> Files, string PrimarySha256)
{
    public long DistinctBytes => Files.Values.DistinctBy(Sha).Sum(b => (long)b.Length);
    public int DistinctFiles => Files.Values.Select(Sha).Distinct().Count();
    public static string Sha(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}

/// <summary>Models registered the way a tenant does it (uploads, then a version naming them), for the model delivery tests.</summary>
public static class DeliveredModels
{
    /// <summary>
    /// A tiny diffusers ONNX folder of its own weights (<c>atelier models demo --name</c>'s), each file uploaded, then one
    /// version whose files keep their folder paths (under <paramref name="prefix"/>), the UNet primary.
    /// </summary>
    public static async Task<RegisteredModel> OnnxFolderAsync(TestHost host, TenantWorld world, string name, string prefix = "",
        IDictionary<string, byte[]>? extra = null)
    {
        var temp = Directory.CreateTempSubdirectory("atelier-onnx-").FullName;
        try
        {
            var folder = DemoModel.Write(temp, name);
            var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
                .ToDictionary(f => Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/'), File.ReadAllBytes);
            foreach (var (path, bytes) in extra ?? new Dictionary<string, byte[]>())
            {
                files[path] = bytes;
            }

            return await RegisterAsync(host, world, name, "onnx", files.ToDictionary(f => prefix + f.Key, f => f.Value), prefix + "unet/model.onnx");
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>A model of <paramref name="type"/> with one version of the given files (each uploaded), <paramref name="primary"/> the primary one.</summary>
    public static async Task<RegisteredModel> RegisterAsync(TestHost host, TenantWorld world, string name, string type, IReadOnlyDictionary<string, byte[]> files, string primary)
    {
        var admin = world.AdminOf(host);
        var model = (await admin.PostAsync("/api/v1/models", new { name, type })).Created().GetProperty("id").GetString()!;
        var entries = new List<object>();
        foreach (var (path, bytes) in files)
        {
            var upload = await Library.UploadAsync(host, admin, type, Path.GetFileName(path), bytes);
            entries.Add(new { aliasName = path, uploadId = upload.GetProperty("id").GetString(), primary = path == primary });
        }

        var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new { name = "v1", files = entries })).Created().GetProperty("id").GetString()!;
        return new RegisteredModel(name, model, version, files, RegisteredModel.Sha(files[primary]));
    }

    /// <summary>A txt2img request for the model, small and quick, with a fixed seed.</summary>
    public static object Txt2Img(string model, long seed = 7) =>
        new { prompt = "a red fox", steps = 2, width = 64, height = 64, seed, override_settings = new { sd_model_checkpoint = model } };
}
