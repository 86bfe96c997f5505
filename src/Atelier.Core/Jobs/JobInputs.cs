using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Atelier.Storage;

namespace Atelier.Core.Jobs;

/// <summary>
/// A job's input pictures (img2img's <c>init_images</c> and <c>mask</c>, a ComfyUI workflow's <c>images</c>) go to the
/// object store when the job is queued, and the queued body names them (<c>atelier-input:sha256:&lt;hex&gt;</c>): the
/// job's row stays small whatever the pictures, the same picture sent again is stored once per tenant, and the worker
/// fetches each through a route that only the lease holder may use.
/// </summary>
public static partial class JobInputs
{
    public const string Prefix = Contracts.Workers.WorkerRoutes.InputPrefix;

    /// <summary>Pictures smaller than this stay in the body (a reference and a fetch would cost more).</summary>
    public const int MinBytes = 1024;

    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static string Key(string tenantId, string sha256) => $"inputs/{tenantId}/{sha256[..2]}/{sha256}";

    [GeneratedRegex("atelier-input:sha256:([0-9a-f]{64})")]
    private static partial Regex Reference();

    /// <summary>The body to queue: <paramref name="json"/> with its pictures moved to the store (unchanged when there is none to move).</summary>
    public static async Task<string> StoreAsync(IObjectStore store, string tenantId, string json, CancellationToken ct)
    {
        var root = JsonNode.Parse(json) as JsonObject;
        if (root is null)
        {
            return json;
        }

        var moved = await Contracts.Workers.InputPictures.RewriteAsync(root, async text =>
        {
            if (text.Length < MinBytes || GenerationInput.Base64Bytes(text) is not { } bytes)
            {
                return null;
            }

            var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
            var key = Key(tenantId, sha);
            if (await store.SizeAsync(key, ct) != bytes.Length)
            {
                using var content = new MemoryStream(bytes, writable: false);
                await store.PutAsync(key, content, bytes.Length, ct);
            }

            return Prefix + sha;
        });

        // Written as compactly as it came (no \uXXXX for non-ASCII text), so the body never grows past what was accepted.
        return moved ? root.ToJsonString(Relaxed) : json;
    }

    /// <summary>The pictures a queued body names (their SHA-256s).</summary>
    public static IReadOnlySet<string> References(string json) => Reference().Matches(json).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
}
