namespace Atelier.Runtime;

/// <summary>
/// A backend failed an operation. <see cref="Code"/> is the backend's own short cause (see <see cref="RuntimeErrors"/>,
/// or <c>Kube{status}</c> for an API server answer); the message says what happened, without secrets. The platform
/// maps it to the operation's catalog code and puts <see cref="Code"/> and the message in errCode and errMessage.
/// </summary>
public class RuntimeException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;
}

/// <summary>A Kubernetes custom resource call failed (its API group is not installed, validation refused it, a conflict did not resolve): <c>s_kube_crderror</c>.</summary>
public sealed class CustomResourceException(string code, string message, Exception? inner = null) : RuntimeException(code, message, inner);

/// <summary>No instance slot came free within the wait: the router answers 503 with <see cref="RetryAfter"/>.</summary>
public sealed class RuntimeCapacityException(string message, TimeSpan retryAfter) : RuntimeException(RuntimeErrors.NoCapacity, message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}

/// <summary>The backends' short causes.</summary>
public static class RuntimeErrors
{
    public const string CommandNotFound = "CommandNotFound";
    public const string ExitedAtStart = "ExitedAtStart";
    public const string NeverHealthy = "NeverHealthy";
    public const string PortInUse = "PortInUse";
    public const string NoCapacity = "NoCapacity";
    public const string NotDeployed = "NotDeployed";
    public const string UnknownRevision = "UnknownRevision";
    public const string InvalidSpec = "InvalidSpec";
}
