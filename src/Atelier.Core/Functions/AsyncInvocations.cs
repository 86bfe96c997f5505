using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Functions;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Functions;

/// <summary>
/// Async invocations (<c>X-Atelier-Invocation-Type: Async</c>): the request is stored durably and answered 202 at once;
/// <see cref="AsyncInvocationRunner"/> runs it with the function's async invoke config and keeps the response.
/// </summary>
public sealed class AsyncInvocations(AtelierDb db, TimeProvider clock, IObjectStore store, IOptions<FunctionsOptions> options, AsyncSignal signal, FunctionManager functions)
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Expired = "expired";

    public int BodyMax => options.Value.AsyncBodyMaxBytes;

    public async Task<AsyncInvocationDto> EnqueueAsync(RoutedFunction routed, string? qualifier, string method, string pathAndQuery, string? contentType, byte[] body, CancellationToken ct)
    {
        var f = routed.Entity;
        var now = clock.GetUtcNow().UtcDateTime;
        var inv = new AsyncInvocation
        {
            Id = Ids.New("inv", clock), TenantId = f.TenantId, FunctionId = f.Id, Qualifier = qualifier, Method = method, Path = pathAndQuery,
            ContentType = contentType, RequestBody = body, CreatedAt = now, NextAttemptAt = now,
        };
        db.AsyncInvocations.Add(inv);
        await db.SaveChangesAsync(ct);
        signal.Wake();
        return ToDto(inv, f.Name, null);
    }

    /// <summary>An invocation and, once done, its stored result; a result the store lost is <c>s_function_getasyncinvocationerror</c>.</summary>
    public async Task<AsyncInvocationDto> GetAsync(string service, string function, string id, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, function, false, ct);
        var inv = await db.AsyncInvocations.AsNoTracking().FirstOrDefaultAsync(i => i.Id == id && i.FunctionId == f.Id, ct)
                  ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"invocation: {id} does not exist" }, status: 404);
        string? result = null;
        if (inv.ResultKey is { } key)
        {
            try
            {
                await using var stream = await store.OpenReadAsync(key, ct);
                using var copy = new MemoryStream();
                await stream.CopyToAsync(copy, ct);
                result = IsText(inv.ResultContentType) ? System.Text.Encoding.UTF8.GetString(copy.ToArray()) : Convert.ToBase64String(copy.ToArray());
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                throw new AtelierException(ErrorCatalog.s_function_getasyncinvocationerror, errCode: ErrCodes.AsyncResultUnreadable, errMessage: $"the stored result of {id} cannot be read: {e.GetType().Name}");
            }
        }

        return ToDto(inv, f.Name, result);
    }

    public async Task<Page<AsyncInvocationDto>> ListAsync(string service, string function, PageRequest page, CancellationToken ct)
    {
        var (_, f) = await functions.FindAsync(service, function, false, ct);
        return await db.AsyncInvocations.AsNoTracking().Where(i => i.FunctionId == f.Id).OrderByDescending(i => i.CreatedAt).ThenByDescending(i => i.Id)
            .ToPageAsync(page, i => ToDto(i, f.Name, null), ct);
    }

    public static bool IsText(string? contentType) =>
        contentType is not null && (contentType.StartsWith("text/", StringComparison.OrdinalIgnoreCase) || contentType.Contains("json", StringComparison.OrdinalIgnoreCase));

    private static AsyncInvocationDto ToDto(AsyncInvocation i, string functionName, string? result) =>
        new(i.Id, functionName, i.Qualifier, i.Method, i.Path, i.State, i.Attempts, i.StatusCode, i.Error, i.CreatedAt, i.FinishedAt, i.ResultContentType, result);
}

/// <summary>Wakes the async runner when an invocation is queued on this replica.</summary>
public sealed class AsyncSignal : WakeSignal;
