using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;

namespace Atelier.Core.Tenancy;

/// <summary>What tenant init installs, as read from the defaults file.</summary>
public sealed record TenantDefaults(
    IReadOnlyList<TenantDefaults.RoleEntry>? Roles,
    TenantDefaults.ConfigEntry? Config,
    IReadOnlyList<TenantDefaults.ModelEntry>? Models)
{
    public sealed record RoleEntry(string? Name, string? Description);
    public sealed record ConfigEntry(string? DefaultRole, int? MaxConcurrentJobs, int? ImageRetentionDays, int? DefaultSessionSeconds);
    /// <param name="SourceUrl">Where the model's file is downloaded from at init (optional).</param>
    /// <param name="FileName">The file's alias name in the model's "default" version; defaults to the URL's last segment.</param>
    /// <param name="Builtin">The file is one the server ships (the demo pipeline), stored at start: no download.</param>
    public sealed record ModelEntry(string? Name, string? Type, string? Description, string? SourceUrl, string? FileName = null, bool Builtin = false);

    public static readonly string[] ModelTypes = ["checkpoint", "lora", "embedding", "vae", "controlnet", "upscaler", "onnx"];

    /// <summary>The alias of a default model's file: its <c>fileName</c>, else the URL's last segment.</summary>
    public static string FileNameOf(ModelEntry m) => m.FileName ?? Path.GetFileName(new Uri(m.SourceUrl!).AbsolutePath);

    /// <summary>
    /// Reads the file: absent → <c>b_model_defaultmodelsfilenotexist</c>; unreadable or not JSON of this shape →
    /// <c>b_model_defaultmodelsfilereaderror</c>. Content that parses but makes no sense is left to <see cref="Check"/>.
    /// </summary>
    public static async Task<TenantDefaults> LoadAsync(string path, CancellationToken ct)
    {
        if (!File.Exists(path))
        {
            throw new AtelierException(ErrorCatalog.b_model_defaultmodelsfilenotexist,
                errCode: ErrCodes.FileNotFound, errMessage: $"defaults file {Path.GetFileName(path)} does not exist");
        }

        try
        {
            await using var stream = File.OpenRead(path);
            return await JsonSerializer.DeserializeAsync<TenantDefaults>(stream, AtelierJson.Options, ct)
                   ?? throw new JsonException("the file holds null");
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new AtelierException(ErrorCatalog.b_model_defaultmodelsfilereaderror,
                errCode: e.GetType().Name, errMessage: e.Message);
        }
    }

    /// <summary>The problems that make init impossible, each a sentence; empty when the defaults are usable.</summary>
    public IReadOnlyList<string> Check()
    {
        var problems = new List<string>();
        var roles = Roles ?? [];
        var roleNames = roles.Select(r => r.Name?.Trim() ?? "").ToList();
        if (roleNames.Any(string.IsNullOrEmpty))
        {
            problems.Add("a default role has no name");
        }

        foreach (var dup in roleNames.GroupBy(n => n).Where(g => g.Count() > 1))
        {
            problems.Add($"default role '{dup.Key}' is listed twice");
        }

        if (Config?.DefaultRole is { } def && !roleNames.Contains(def))
        {
            problems.Add($"config.defaultRole '{def}' is not one of the default roles");
        }

        var models = Models ?? [];
        foreach (var m in models)
        {
            if (string.IsNullOrWhiteSpace(m.Name))
            {
                problems.Add("a default model has no name");
            }

            if (m.Type is null || !ModelTypes.Contains(m.Type))
            {
                problems.Add($"default model '{m.Name}' has type '{m.Type}', not one of {string.Join(", ", ModelTypes)}");
            }
        }

        foreach (var m in models.Where(m => m.SourceUrl is not null))
        {
            if (!Uri.TryCreate(m.SourceUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                problems.Add($"default model '{m.Name}' has sourceUrl '{m.SourceUrl}', not an http(s) URL");
            }
            else if (m.Type is not null && !Atelier.Core.Models.ModelFileTypes.AcceptsFile(m.Type, FileNameOf(m)))
            {
                // The same rule as any file added to a version: init writes the file row directly, so it checks here.
                problems.Add($"default model '{m.Name}' would get the file '{FileNameOf(m)}', which a {m.Type} does not take");
            }
        }

        foreach (var dup in models.GroupBy(m => m.Name).Where(g => g.Count() > 1))
        {
            problems.Add($"default model '{dup.Key}' is listed twice");
        }

        return problems;
    }
}
