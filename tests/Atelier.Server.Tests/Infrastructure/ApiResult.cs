using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Atelier.Contracts.Errors;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>One HTTP answer, with the assertions every test makes on the envelope.</summary>
public sealed class ApiResult
{
    private ApiResult(HttpStatusCode status, string text, string? requestId, string? contentType, IReadOnlyDictionary<string, string> headers)
    {
        Status = status;
        Text = text;
        RequestId = requestId;
        ContentType = contentType;
        Headers = headers;
    }

    public HttpStatusCode Status { get; }
    public string Text { get; }
    public string? RequestId { get; }
    public string? ContentType { get; }
    public IReadOnlyDictionary<string, string> Headers { get; }

    public JsonElement Json => JsonDocument.Parse(Text).RootElement;

    public static async Task<ApiResult> ReadAsync(HttpResponseMessage resp)
    {
        var text = await resp.Content.ReadAsStringAsync();
        var headers = resp.Headers.Concat(resp.Content.Headers)
            .ToDictionary(h => h.Key, h => string.Join(",", h.Value), StringComparer.OrdinalIgnoreCase);
        headers.TryGetValue("X-Request-Id", out var rid);
        return new ApiResult(resp.StatusCode, text, rid, resp.Content.Headers.ContentType?.MediaType, headers);
    }

    /// <summary>Asserts a success envelope with the expected status and returns its <c>data</c>.</summary>
    public JsonElement Ok(HttpStatusCode expected = HttpStatusCode.OK)
    {
        Assert.True(Status == expected, $"expected {(int)expected}, got {(int)Status}: {Text}");
        var json = Json;
        Assert.True(json.GetProperty("success").GetBoolean(), Text);
        Assert.Equal(RequestId, json.GetProperty("requestId").GetString());
        return json.GetProperty("data");
    }

    public JsonElement Created() => Ok(HttpStatusCode.Created);

    /// <summary>
    /// Asserts the error envelope: the status, the code, the message (the seed's Chinese unless
    /// <paramref name="english"/>; placeholders filled with <paramref name="values"/> or, when absent, anything),
    /// the request id matching the header, and no stack trace anywhere.
    /// </summary>
    public JsonElement Error(ErrorCode code, int? status = null, IReadOnlyDictionary<string, string>? values = null, bool english = false)
    {
        var expectedStatus = status ?? code.Status;
        Assert.True((int)Status == expectedStatus, $"expected {expectedStatus} {code.Code}, got {(int)Status}: {Text}");
        Assert.StartsWith("application/json", ContentType ?? "", StringComparison.Ordinal);
        var json = Json;
        Assert.False(json.GetProperty("success").GetBoolean());
        Assert.Equal(code.Code, json.GetProperty("subErrCode").GetString());
        Assert.False(string.IsNullOrEmpty(RequestId));
        Assert.Equal(RequestId, json.GetProperty("requestId").GetString());
        Assert.True(json.TryGetProperty("errCode", out _));
        Assert.True(json.TryGetProperty("errMessage", out _));
        var message = json.GetProperty("subErrMessage").GetString()!;
        if (values is not null || code.Placeholders.Count == 0)
        {
            Assert.Equal(code.Format(english, values), message);
        }
        else
        {
            var template = english ? code.MessageEn : code.MessageZh;
            var pattern = "^" + Regex.Replace(Regex.Escape(template), @"\\\$\\\{[A-Za-z]+}", ".+") + "$";
            Assert.Matches(pattern, message);
        }

        AssertNoLeak();
        return json;
    }

    /// <summary>No stack trace and no secret in a body, ever.</summary>
    public void AssertNoLeak()
    {
        Assert.DoesNotContain("   at ", Text, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception:", Text, StringComparison.Ordinal);
        Assert.DoesNotContain("atpk_", Text, StringComparison.Ordinal);
    }

    /// <summary>Any error in the envelope with a 4xx status (used by the generated-input tests).</summary>
    public void AssertClientErrorEnvelope()
    {
        Assert.True((int)Status is >= 400 and < 500, $"expected a 4xx, got {(int)Status}: {Text}");
        var json = Json;
        Assert.False(json.GetProperty("success").GetBoolean());
        var code = json.GetProperty("subErrCode").GetString();
        Assert.Contains(ErrorCatalog.All, c => c.Code == code);
        Assert.Equal(RequestId, json.GetProperty("requestId").GetString());
        AssertNoLeak();
    }
}
