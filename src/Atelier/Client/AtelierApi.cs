using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Atelier.Commands;
using Atelier.Contracts;

namespace Atelier.Client;

/// <summary>
/// The public HTTP API as the CLI uses it: the credential, tenant and operator on every request, the success envelope
/// unwrapped to its <c>data</c>, and an error envelope turned into a <see cref="ClientException"/> with the exit code its
/// status calls for and the server's message (never the credential).
/// </summary>
internal sealed class AtelierApi : IDisposable
{
    private readonly HttpClient _http;
    private readonly Connection _connection;

    public AtelierApi(Connection connection, TimeSpan? timeout = null)
    {
        _connection = connection;
        _http = new HttpClient { BaseAddress = connection.Server, Timeout = timeout ?? TimeSpan.FromSeconds(100) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", connection.Token);
        _http.DefaultRequestHeaders.AcceptLanguage.ParseAdd("en");
        _http.DefaultRequestHeaders.UserAgent.ParseAdd($"atelier-cli/{VersionCommand.Text.Split('+')[0]}");
        if (connection.Tenant is not null)
        {
            _http.DefaultRequestHeaders.Add("X-Tenant-Id", connection.Tenant);
        }

        _http.DefaultRequestHeaders.Add("X-Operator-Id", connection.Operator);
    }

    public Connection Connection => _connection;

    public HttpClient Http => _http;

    public Task<JsonElement> GetAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Get, path, null, ct);

    public Task<JsonElement> PostAsync(string path, object? body, CancellationToken ct) => SendAsync(HttpMethod.Post, path, body, ct);

    public Task<JsonElement> DeleteAsync(string path, CancellationToken ct) => SendAsync(HttpMethod.Delete, path, null, ct);

    /// <summary>Sends a JSON request and returns the answer's <c>data</c> (an empty object for 204).</summary>
    public async Task<JsonElement> SendAsync(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path.TrimStart('/'));
        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body, AtelierJson.Options), Encoding.UTF8, "application/json");
        }

        using var response = await SendRawAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        return await DataAsync(response, ct);
    }

    /// <summary>Sends a request as built by the caller; a transport failure becomes <see cref="ExitCodes.Network"/>.</summary>
    public async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken ct)
    {
        try
        {
            return await _http.SendAsync(request, completion, ct);
        }
        catch (HttpRequestException e)
        {
            throw new ClientException(ExitCodes.Network, $"Cannot reach {_connection.Server}: {e.Message}");
        }
        catch (TaskCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new ClientException(ExitCodes.Network, $"{_connection.Server} did not answer within {_http.Timeout.TotalSeconds:0} s ({e.Message}).");
        }
    }

    /// <summary>The <c>data</c> of a success envelope, or the error envelope as a <see cref="ClientException"/>.</summary>
    public static async Task<JsonElement> DataAsync(HttpResponseMessage response, CancellationToken ct)
    {
        await ThrowIfFailedAsync(response, ct);
        if (response.StatusCode == HttpStatusCode.NoContent)
        {
            return JsonDocument.Parse("{}").RootElement;
        }

        var text = await response.Content.ReadAsStringAsync(ct);
        try
        {
            var root = JsonDocument.Parse(text).RootElement;
            return root.ValueKind == JsonValueKind.Object && root.TryGetProperty("data", out var data) ? data : root;
        }
        catch (JsonException)
        {
            throw new ClientException(ExitCodes.ServerError, $"The server answered {(int)response.StatusCode} with a body that is not JSON.");
        }
    }

    public static async Task ThrowIfFailedAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var status = (int)response.StatusCode;
        var text = await response.Content.ReadAsStringAsync(ct);
        string? code = null, errCode = null, message = null, requestId = null;
        try
        {
            var root = JsonDocument.Parse(text).RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                code = Str(root, "subErrCode");
                errCode = Str(root, "errCode");
                message = Str(root, "errMessage") is { Length: > 0 } detail && Str(root, "subErrMessage") is { } sub ? $"{sub} ({detail})" : Str(root, "subErrMessage");
                requestId = Str(root, "requestId");
            }
        }
        catch (JsonException)
        {
            // not the envelope: a proxy's page, say
        }

        var exit = status switch
        {
            401 or 403 => ExitCodes.Unauthorized,
            404 or 410 => ExitCodes.NotFound,
            >= 500 => ExitCodes.ServerError,
            _ => ExitCodes.Failed,
        };
        var what = code is null ? $"HTTP {status}" : errCode is null ? $"{code}, HTTP {status}" : $"{code} {errCode}, HTTP {status}";
        var retry = response.Headers.RetryAfter?.Delta is { } delta ? $" Retry after {delta.TotalSeconds:0} s." : "";
        var id = requestId is null ? "" : $" [request {requestId}]";
        throw new ClientException(exit, $"{message ?? response.ReasonPhrase ?? "Request failed"} ({what}).{retry}{id}") { ErrorCode = errCode ?? code, Status = status };
    }

    private static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public void Dispose() => _http.Dispose();
}
