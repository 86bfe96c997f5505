using System.Text.Json;
using System.Text.Json.Serialization;

namespace Atelier.Client;

/// <summary>
/// What <c>atelier login</c> remembers: the server and the credential, in the user's config folder
/// (<c>$ATELIER_CONFIG</c>, else <c>$XDG_CONFIG_HOME/atelier/config.json</c>, else <c>~/.config/atelier/config.json</c>).
/// The file is created readable by its owner only (0600), its folder 0700.
/// </summary>
internal sealed record ClientConfig(
    [property: JsonPropertyName("server")] string Server,
    [property: JsonPropertyName("token")] string Token,
    [property: JsonPropertyName("tenant")] string? Tenant = null,
    [property: JsonPropertyName("operator")] string? Operator = null)
{
    public const string PathVariable = "ATELIER_CONFIG";

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyFolder = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public static string FilePath
    {
        get
        {
            if (Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } explicitPath)
            {
                return Path.GetFullPath(explicitPath);
            }

            var configHome = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } xdg
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
            return Path.Combine(configHome, "atelier", "config.json");
        }
    }

    /// <summary>The saved login, or null when there is none (no file, or one that is not a login).</summary>
    public static ClientConfig? Load()
    {
        var path = FilePath;
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            var config = JsonSerializer.Deserialize<ClientConfig>(File.ReadAllText(path), Json);
            return config is { Server.Length: > 0, Token.Length: > 0 } ? config : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// Writes the file: a new file made with mode 0600 from the start (never a readable file narrowed afterwards), then
    /// moved over the old one, so that a reader sees the old login or the new one, never half of one.
    /// </summary>
    public void Save()
    {
        var path = FilePath;
        var folder = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(folder))
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(folder);
            }
            else
            {
                Directory.CreateDirectory(folder, OwnerOnlyFolder);
            }
        }

        var temp = Path.Combine(folder, $".config.{Guid.NewGuid():N}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly;
        }

        try
        {
            using (var file = new FileStream(temp, options))
            {
                JsonSerializer.Serialize(file, this, Json);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Forgets the login; whether there was one.</summary>
    public static bool Delete()
    {
        var path = FilePath;
        if (!File.Exists(path))
        {
            return false;
        }

        File.Delete(path);
        return true;
    }
}
