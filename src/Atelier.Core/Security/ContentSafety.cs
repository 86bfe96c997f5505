using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Safety;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Security;

/// <summary>
/// The content safety checker, run on the prompt before a job is queued: the platform's and the tenant's words
/// (whole words, case-insensitive; any substring for scripts without spaces) and patterns (regular expressions with a
/// match timeout), then the tenant's moderation endpoint if it has one (<c>POST {"input": prompt}</c>, answering
/// <c>{"flagged": bool}</c> or OpenAI's <c>{"results": [{"flagged": bool}]}</c>). Refused content, and a checker
/// that fails or times out (fail closed), is <c>b_agent_contentnotsafe</c> with the reason in <c>errCode</c>.
/// </summary>
public sealed class ContentSafety(AtelierDb db, RequestContext ctx, TimeProvider clock, IOptions<SafetyOptions> options, ShortCache<TenantSafetyRules> cache,
    SafetyPatterns compiled)
{
    private SafetyOptions O => options.Value;

    public async Task<SafetyRulesDto> GetAsync(CancellationToken ct)
    {
        var rules = await db.SafetyRules.AsNoTracking().FirstOrDefaultAsync(ct);
        return rules is null ? new SafetyRulesDto([], [], null, null) : ToDto(rules);
    }

    public async Task<SafetyRulesDto> PutAsync(SafetyRulesRequest req, CancellationToken ct)
    {
        var words = (req.Words ?? []).Select(w => w?.Trim() ?? "").ToList();
        if (words.Count > 5000 || words.Any(w => w.Length is 0 or > 200))
        {
            throw AtelierException.InvalidInput("words", "at most 5000 words of 1-200 characters");
        }

        var patterns = (req.Patterns ?? []).ToList();
        if (patterns.Count > 100 || patterns.Any(p => p is null || p.Length is 0 or > 500))
        {
            throw AtelierException.InvalidInput("patterns", "at most 100 patterns of 1-500 characters");
        }

        foreach (var p in patterns)
        {
            SafetyPatterns.CheckNew(p);
        }

        var url = req.ModerationUrl is { Length: > 0 } given ? AddressGuard.CheckUrlInput(given, "moderationUrl", O.AllowPrivateNetworks) : null;

        var tenant = ctx.TenantId!;
        var rules = await db.SafetyRules.FirstOrDefaultAsync(ct);
        if (rules is null)
        {
            rules = new SafetyRules { TenantId = tenant };
            db.SafetyRules.Add(rules);
        }

        rules.WordsJson = JsonSerializer.Serialize(words.Distinct(StringComparer.OrdinalIgnoreCase));
        rules.PatternsJson = JsonSerializer.Serialize(patterns);
        rules.ModerationUrl = url;
        rules.UpdatedAt = clock.GetUtcNow().UtcDateTime;
        Audit.Record(db, ctx, clock, "safety.put", "safety_rules", tenant, tenant);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("rules", "were saved at the same moment; try again"), ct);
        cache.Remove(tenant);
        compiled.Forget(tenant);
        return ToDto(rules);
    }

    /// <summary>
    /// Checks a prompt and its negative prompt (an engine reads both); throws <c>b_agent_contentnotsafe</c> when either
    /// is refused or the checker cannot tell. The moderation endpoint is asked about the prompt.
    /// </summary>
    public async Task CheckPromptAsync(string prompt, CancellationToken ct, string negativePrompt = "")
    {
        var rules = await RulesAsync(ctx.TenantId!, ct);
        var words = O.Words.Concat(rules.Words);
        foreach (var (text, what) in new[] { (prompt.ToLowerInvariant(), "prompt"), (negativePrompt.ToLowerInvariant(), "negative prompt") })
        {
            foreach (var word in words)
            {
                if (ContainsWord(text, word.ToLowerInvariant()))
                {
                    throw Refused(ErrCodes.Word, $"the {what} contains a refused word ({Mask(word)})");
                }
            }
        }

        try
        {
            if (compiled.AnyMatch(compiled.Platform.Concat(rules.Patterns), [prompt, negativePrompt]))
            {
                throw Refused(ErrCodes.Pattern, "the prompt or negative prompt matches a refused pattern");
            }
        }
        catch (PatternBudgetException)
        {
            throw Refused(ErrCodes.CheckerTimeout, "the safety patterns took too long on this prompt; refused (the checker fails closed)");
        }

        if (rules.ModerationUrl is { } url)
        {
            await ModerateAsync(url, prompt, ct);
        }
    }

    /// <summary>The tenant's rules, parsed (read by tenant id: workers act across tenants), from the replica's short cache.</summary>
    private Task<TenantSafetyRules> RulesAsync(string tenantId, CancellationToken ct) => cache.GetOrAddAsync(tenantId, async () =>
    {
        var rules = await db.SafetyRules.IgnoreQueryFilters().AsNoTracking().FirstOrDefaultAsync(r => r.TenantId == tenantId, ct);
        return rules is null ? TenantSafetyRules.None : new TenantSafetyRules(JsonSerializer.Deserialize<List<string>>(rules.WordsJson) ?? [],
            compiled.Of(tenantId, rules.PatternsJson, JsonSerializer.Deserialize<List<string>>(rules.PatternsJson) ?? []), rules.ModerationUrl);
    });

    /// <summary>
    /// Checks a finished job's images with the tenant's moderation endpoint, if it has one (<c>POST {"input": prompt,
    /// "images": [base64 PNG, …]}</c>, the same answer); throws <c>b_agent_contentnotsafe</c> (<c>moderation_image</c>,
    /// or the checker's failure: fail closed).
    /// </summary>
    public Task CheckImagesAsync(string moderationUrl, string prompt, IReadOnlyList<byte[]> images, CancellationToken ct) =>
        ModerateAsync(moderationUrl, prompt, ct, [.. images.Select(Convert.ToBase64String)]);

    /// <summary>The tenant's moderation endpoint, or null when it has none (read by tenant id: workers act across tenants).</summary>
    public async Task<string?> ModerationUrlAsync(string tenantId, CancellationToken ct) => (await RulesAsync(tenantId, ct)).ModerationUrl;

    private async Task ModerateAsync(string url, string prompt, CancellationToken ct, IReadOnlyList<string>? images = null)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(Math.Clamp(O.ModerationTimeoutSeconds, 1, 60)));
        using var handler = AddressGuard.CreateHandler(O.AllowPrivateNetworks);
        using var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        var cap = Math.Max(1024, O.ModerationMaxReplyBytes);
        JsonElement answer;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, url)
            {
                Content = images is null ? JsonContent.Create(new { input = prompt }) : JsonContent.Create(new { input = prompt, images }),
            };
            // Headers first, then at most the cap of the body: an endless or huge answer costs this server nothing.
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw Refused(ErrCodes.CheckerFailed, $"the moderation endpoint answered {(int)response.StatusCode}; refused (the checker fails closed)");
            }

            if (response.Content.Headers.ContentLength > cap)
            {
                throw Refused(ErrCodes.CheckerFailed, $"the moderation endpoint's answer is larger than {cap} bytes; refused (the checker fails closed)");
            }

            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
            var buffer = new byte[cap + 1];
            var read = 0;
            for (int n; read < buffer.Length && (n = await body.ReadAsync(buffer.AsMemory(read), timeout.Token)) > 0;)
            {
                read += n;
            }

            if (read > cap)
            {
                throw Refused(ErrCodes.CheckerFailed, $"the moderation endpoint's answer is larger than {cap} bytes; refused (the checker fails closed)");
            }

            answer = JsonSerializer.Deserialize<JsonElement>(buffer.AsSpan(0, read));
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw Refused(ErrCodes.CheckerTimeout, $"the moderation endpoint did not answer within {O.ModerationTimeoutSeconds} s; refused (the checker fails closed)");
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or IOException or SocketException or NotSupportedException)
        {
            throw Refused(ErrCodes.CheckerFailed, $"the moderation endpoint could not be asked ({e.Message}); refused (the checker fails closed)");
        }

        bool? flagged = answer.ValueKind != JsonValueKind.Object ? null
            : answer.TryGetProperty("flagged", out var f) && f.ValueKind is JsonValueKind.True or JsonValueKind.False ? f.GetBoolean()
            : answer.TryGetProperty("results", out var r) && r.ValueKind == JsonValueKind.Array && r.GetArrayLength() > 0
              && r[0].TryGetProperty("flagged", out var rf) && rf.ValueKind is JsonValueKind.True or JsonValueKind.False ? rf.GetBoolean() : null;
        if (flagged is null)
        {
            throw Refused(ErrCodes.CheckerFailed, "the moderation endpoint's answer has no 'flagged'; refused (the checker fails closed)");
        }

        if (flagged.Value)
        {
            throw images is null
                ? Refused(ErrCodes.Moderation, "the moderation endpoint flagged the prompt")
                : Refused(ErrCodes.ModerationImage, "the moderation endpoint flagged a generated image; the images were deleted");
        }
    }

    /// <summary>A whole word for scripts with spaces; any occurrence for words in scripts without (CJK).</summary>
    private static bool ContainsWord(string text, string word)
    {
        if (word.Any(c => c > '\u2E7F'))
        {
            return text.Contains(word, StringComparison.Ordinal);
        }

        for (var i = text.IndexOf(word, StringComparison.Ordinal); i >= 0; i = text.IndexOf(word, i + 1, StringComparison.Ordinal))
        {
            var before = i == 0 || !char.IsLetterOrDigit(text[i - 1]);
            var after = i + word.Length == text.Length || !char.IsLetterOrDigit(text[i + word.Length]);
            if (before && after)
            {
                return true;
            }
        }

        return false;
    }

    private static string Mask(string word) => word.Length <= 2 ? new string('*', word.Length) : word[0] + new string('*', word.Length - 2) + word[^1];

    private static AtelierException Refused(string reason, string message) => new(ErrorCatalog.b_agent_contentnotsafe, errCode: reason, errMessage: message);

    private static SafetyRulesDto ToDto(SafetyRules r) =>
        new(JsonSerializer.Deserialize<List<string>>(r.WordsJson) ?? [], JsonSerializer.Deserialize<List<string>>(r.PatternsJson) ?? [], r.ModerationUrl, r.UpdatedAt);
}
