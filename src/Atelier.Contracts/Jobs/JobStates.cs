namespace Atelier.Contracts.Jobs;

/// <summary>A job's states: queued, then running (leased by a worker), then one of the four terminal states.</summary>
public static class JobStates
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Canceled = "canceled";

    /// <summary>Ended by the server: its attempts ran out, or it did not stop within the grace after a cancel.</summary>
    public const string Aborted = "aborted";

    public static IReadOnlyList<string> All { get; } = [Queued, Running, Succeeded, Failed, Canceled, Aborted];

    public static bool IsTerminal(string state) => state is Succeeded or Failed or Canceled or Aborted;
}
