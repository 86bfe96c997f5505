using Atelier.Contracts;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>Success bodies of the native API: <c>{ requestId, success: true, data }</c>.</summary>
internal static class Reply
{
    public static Ok<ApiResponse<T>> Ok<T>(HttpContext http, T data) => TypedResults.Ok(new ApiResponse<T>(http.TraceIdentifier, true, data));

    public static Created<ApiResponse<T>> Created<T>(HttpContext http, string location, T data) =>
        TypedResults.Created(location, new ApiResponse<T>(http.TraceIdentifier, true, data));
}
