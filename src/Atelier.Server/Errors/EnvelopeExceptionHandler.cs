using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Server.Hosting;
using Atelier.Storage;
using Microsoft.AspNetCore.Diagnostics;

namespace Atelier.Server.Errors;

/// <summary>
/// The single place where exceptions become responses: domain errors keep their code; binding failures are
/// <c>p_common_needcorrectinputformat</c>; too-large bodies 413; database failures <c>s_common_dbexecuteexception</c>
/// with the provider's code; a full storage disk <c>s_common_lockfail</c> (503, <c>Retry-After</c>); a record whose stored
/// bytes are gone 410; anything else <c>s_common_globalexception</c>. Never a stack trace, never a secret.
/// </summary>
internal sealed class EnvelopeExceptionHandler(ILogger<EnvelopeExceptionHandler> logger, ServerOptions options, StorageOptions storage) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext http, Exception exception, CancellationToken cancellationToken)
    {
        if (http.Response.HasStarted)
        {
            return false;
        }

        if (exception is OperationCanceledException && http.RequestAborted.IsCancellationRequested)
        {
            http.Response.StatusCode = 499; // the client went away; nobody reads a body
            return true;
        }

        var error = Translate(http, exception);
        if (error.Status >= 500)
        {
            if (exception is IOException io && StorageSpace.IsDiskFull(io))
            {
                Log.StorageFull(logger, http.Request.Method, http.Request.Path, exception.Message);
            }
            else if (DatabaseFailures.Is(exception))
            {
                Log.DatabaseFailure(logger, exception, http.Request.Method, http.Request.Path, error.ErrCode ?? "");
            }
            else
            {
                Log.UnexpectedFailure(logger, exception, http.Request.Method, http.Request.Path);
            }
        }
        else
        {
            Log.RequestFailed(logger, http.Request.Method, http.Request.Path, error.Status, error.Code.Code);
        }

        await ErrorResponses.WriteAsync(http, error);
        return true;
    }

    private AtelierException Translate(HttpContext http, Exception exception)
    {
        switch (exception)
        {
            case AtelierException domain:
                return domain;
            case BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge }:
                return new AtelierException(ErrorCatalog.p_common_inputinvalid,
                    new Dictionary<string, string> { ["Input"] = $"body: larger than {options.MaxJsonBodyBytes} bytes" },
                    errCode: ErrCodes.BodyTooLarge, status: StatusCodes.Status413PayloadTooLarge);
            case BadHttpRequestException bad:
                var status = bad.StatusCode is StatusCodes.Status415UnsupportedMediaType ? bad.StatusCode : StatusCodes.Status400BadRequest;
                var detail = bad.InnerException is JsonException inner ? inner.Message : bad.Message;
                return new AtelierException(ErrorCatalog.p_common_needcorrectinputformat, errCode: ErrCodes.Binding, errMessage: detail, status: status);
            case IOException io when StorageSpace.IsDiskFull(io):
                return DiskFull(storage);
            case ObjectNotFoundException:
                return ObjectGone();
        }

        if (DatabaseFailures.Is(exception))
        {
            var (code, message) = DatabaseFailures.Describe(exception);
            return new AtelierException(ErrorCatalog.s_common_dbexecuteexception, errCode: code, errMessage: message);
        }

        return new AtelierException(ErrorCatalog.s_common_globalexception, errCode: ErrCodes.Internal,
            errMessage: $"unexpected {exception.GetType().Name}; see the server log for request {http.TraceIdentifier}");
    }

    /// <summary>The storage disk is full: try again later (another replica, or after the operator made room).</summary>
    public static AtelierException DiskFull(StorageOptions storage) =>
        new(ErrorCatalog.s_common_lockfail, errCode: ErrCodes.DiskFull, errMessage: "the server's storage is full; try again later")
        {
            RetryAfterSeconds = Math.Max(1, storage.FullRetryAfterSeconds),
        };

    /// <summary>The record is there, its stored bytes are not (deleted or lost behind Atelier's back): gone, not a server fault.</summary>
    private static AtelierException ObjectGone() =>
        new(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = "the stored bytes of this resource are gone" },
            errCode: ErrCodes.ObjectMissing, errMessage: "the record exists but its stored object does not", status: StatusCodes.Status410Gone);
}
