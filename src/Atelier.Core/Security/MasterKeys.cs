using System.Security.Cryptography;
using System.Text;

namespace Atelier.Core.Security;

/// <summary>
/// The keys that protect secrets, held outside the database: a master key from configuration or from a key file, and
/// the previous master keys of a rotation. Each purpose gets its own key (HKDF-SHA256 of the master key); each master
/// key has a short id (also derived) that ciphertexts and signed URLs carry, so a rotated key can still be recognised.
/// </summary>
public sealed class MasterKeys
{
    private const int KeyBytes = 32;
    private readonly Material _current;
    private readonly IReadOnlyList<(Material Key, DateTimeOffset? Until)> _previous;
    private readonly TimeProvider _clock;

    private MasterKeys(Material current, IReadOnlyList<(Material, DateTimeOffset?)> previous, TimeProvider clock)
    {
        _current = current;
        _previous = previous;
        _clock = clock;
    }

    /// <summary>Where the key came from, for the start-up log (never the key).</summary>
    public string Source { get; private init; } = "";

    /// <summary>True when this start made the key file (a new key: back it up; other replicas need the same one).</summary>
    public bool Created { get; private init; }

    /// <summary>The id of the key that signs and seals now.</summary>
    public string CurrentId => _current.Id;

    /// <summary>The key of <paramref name="purpose"/> under the current master key.</summary>
    public byte[] Current(KeyPurpose purpose) => _current.For(purpose);

    /// <summary>The key of <paramref name="purpose"/> under the master key with id <paramref name="id"/>: the current one, or a previous one still in its grace period.</summary>
    public byte[]? ById(string id, KeyPurpose purpose)
    {
        if (id == _current.Id)
        {
            return _current.For(purpose);
        }

        var now = _clock.GetUtcNow();
        foreach (var (key, until) in _previous)
        {
            if (key.Id == id && (until is null || now < until))
            {
                return key.For(purpose);
            }
        }

        return null;
    }

    /// <summary>
    /// Reads the keys, creating the default key file on first start. Throws <see cref="InvalidOperationException"/> with
    /// what to fix when the key is malformed, or a configured key file is missing or unreadable: the server must not start.
    /// </summary>
    public static Func<TimeProvider, MasterKeys> Load(SecurityOptions options, string dataDirectory)
    {
        string source;
        byte[] master;
        var created = false;
        if (!string.IsNullOrWhiteSpace(options.MasterKey))
        {
            master = Decode(options.MasterKey, $"{SecurityOptions.SectionName}:MasterKey");
            source = "configuration";
        }
        else if (!string.IsNullOrWhiteSpace(options.KeyFile))
        {
            master = ReadKeyFile(Path.GetFullPath(options.KeyFile));
            source = Path.GetFullPath(options.KeyFile);
        }
        else
        {
            var path = Path.GetFullPath(Path.Combine(dataDirectory, "keys", "master.key"));
            created = !File.Exists(path);
            master = created ? CreateKeyFile(path) : ReadKeyFile(path);
            source = path;
        }

        var current = new Material(master);
        var previous = options.PreviousKeys.Select((p, i) =>
            (new Material(Decode(p.Key, $"{SecurityOptions.SectionName}:PreviousKeys:{i}:Key")), p.Until)).ToList();
        return clock => new MasterKeys(current, previous, clock) { Source = source, Created = created };
    }

    /// <summary>What is wrong with a configured key (<paramref name="what"/> names its setting), or null when it is usable.</summary>
    public static string? KeyProblem(string? base64, string what) => Problem(() => Decode(base64, what));

    /// <summary>What is wrong with a configured key file (missing, unreadable, malformed), or null when it holds a usable key.</summary>
    public static string? KeyFileProblem(string path) => Problem(() => ReadKeyFile(path));

    private static string? Problem(Func<byte[]> read)
    {
        try
        {
            read();
            return null;
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }
    }

    /// <summary>A new master key in the form the configuration and the key file take.</summary>
    public static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(KeyBytes));

    private static byte[] ReadKeyFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException(
                $"The master key file {path} ({SecurityOptions.SectionName}:KeyFile) is missing or unreadable: {e.Message}. " +
                "Restore it (without it no stored webhook secret can be read and no image URL verifies), or remove the setting to use the default file.", e);
        }

        return Decode(text.Trim(), $"the key file {path} ({SecurityOptions.SectionName}:KeyFile)");
    }

    private static byte[] CreateKeyFile(string path)
    {
        var folder = Path.GetDirectoryName(path)!;
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(folder);
        }
        else
        {
            Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var key = NewKey();
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        try
        {
            using var file = new FileStream(path, options);
            file.Write(Encoding.ASCII.GetBytes(key + "\n"));
            file.Flush(flushToDisk: true);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process sharing the data folder made it first: use theirs.
            return ReadKeyFile(path);
        }

        return Convert.FromBase64String(key);
    }

    private static byte[] Decode(string? base64, string what)
    {
        var buffer = new byte[KeyBytes + 3];
        if (base64 is null || !Convert.TryFromBase64String(base64.Trim(), buffer, out var length) || length != KeyBytes)
        {
            throw new InvalidOperationException($"{what} must be base64 of exactly {KeyBytes} random bytes (e.g. `openssl rand -base64 32`).");
        }

        return buffer[..KeyBytes];
    }

    /// <summary>One master key: its id and its per-purpose keys, derived once.</summary>
    private sealed class Material
    {
        private readonly byte[] _webhookSecrets;
        private readonly byte[] _imageUrls;
        private readonly byte[] _runtimeSecrets;

        public Material(byte[] master)
        {
            Id = Convert.ToHexStringLower(HKDF.DeriveKey(HashAlgorithmName.SHA256, master, 4, info: "atelier key id"u8.ToArray()));
            _webhookSecrets = HKDF.DeriveKey(HashAlgorithmName.SHA256, master, KeyBytes, info: "atelier webhook secrets v2"u8.ToArray());
            _imageUrls = HKDF.DeriveKey(HashAlgorithmName.SHA256, master, KeyBytes, info: "atelier image urls v2"u8.ToArray());
            _runtimeSecrets = HKDF.DeriveKey(HashAlgorithmName.SHA256, master, KeyBytes, info: "atelier runtime secrets v1"u8.ToArray());
        }

        public string Id { get; }

        public byte[] For(KeyPurpose purpose) => purpose switch
        {
            KeyPurpose.WebhookSecrets => _webhookSecrets,
            KeyPurpose.ImageUrls => _imageUrls,
            KeyPurpose.RuntimeSecrets => _runtimeSecrets,
            _ => throw new ArgumentOutOfRangeException(nameof(purpose)),
        };
    }
}
