using Atelier.Contracts.Errors;
using Atelier.Runtime;

namespace Atelier.Core.Functions;

/// <summary>Turns a backend's failure into the operation's catalog error, with the backend's cause in errCode/errMessage.</summary>
public static class RuntimeFailures
{
    /// <summary>A custom resource failure is <c>s_kube_crderror</c> whatever the operation; anything else is the operation's own code.</summary>
    public static AtelierException Map(RuntimeException e, ErrorCode operation) => e switch
    {
        CustomResourceException => new AtelierException(ErrorCatalog.s_kube_crderror, errCode: e.Code, errMessage: e.Message, inner: e),
        RuntimeCapacityException c => new AtelierException(operation, errCode: e.Code, errMessage: e.Message, status: 503, inner: e)
        {
            RetryAfterSeconds = Math.Max(1, (int)Math.Ceiling(c.RetryAfter.TotalSeconds)),
        },
        _ => new AtelierException(operation, errCode: e.Code, errMessage: e.Message, inner: e),
    };

    /// <summary>Runs a backend call, mapping its failure to <paramref name="operation"/>.</summary>
    public static async Task<T> Call<T>(ErrorCode operation, Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (RuntimeException e)
        {
            throw Map(e, operation);
        }
    }

    public static async Task Call(ErrorCode operation, Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (RuntimeException e)
        {
            throw Map(e, operation);
        }
    }
}
