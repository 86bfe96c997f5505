using System.Text.Json.Nodes;

namespace Atelier.Contracts.Workers;

/// <summary>
/// The input pictures of a job's body (img2img's <c>init_images</c> and <c>mask</c>, a ComfyUI workflow's <c>images</c>),
/// walked in one place: the server moves them to the object store when the job is queued, the worker puts them back.
/// </summary>
public static class InputPictures
{
    /// <summary>
    /// Replaces each input picture value with what <paramref name="replace"/> gives for it (its string), leaving it as
    /// it is when that is null; true when anything was replaced.
    /// </summary>
    public static async Task<bool> RewriteAsync(JsonObject body, Func<string, Task<string?>> replace)
    {
        var changed = false;
        async Task<string?> Replace(JsonNode? value) =>
            value is JsonValue v && v.TryGetValue<string>(out var text) && await replace(text) is { } replaced ? replaced : null;

        if (body["init_images"] is JsonArray inits)
        {
            for (var i = 0; i < inits.Count; i++)
            {
                if (await Replace(inits[i]) is { } replaced)
                {
                    inits[i] = replaced;
                    changed = true;
                }
            }
        }

        if (await Replace(body["mask"]) is { } mask)
        {
            body["mask"] = mask;
            changed = true;
        }

        if (body["images"] is JsonObject images)
        {
            foreach (var name in images.Select(p => p.Key).ToList())
            {
                if (await Replace(images[name]) is { } replaced)
                {
                    images[name] = replaced;
                    changed = true;
                }
            }
        }

        return changed;
    }
}
