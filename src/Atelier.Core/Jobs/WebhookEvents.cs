using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Jobs;

/// <summary>The events a job sends and how a filter of them is stored (comma-delimited on both sides, so one LIKE finds one).</summary>
public static class WebhookEvents
{
    public const string Started = "started";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Canceled = "canceled";

    public static readonly string[] All = [Started, Completed, Failed, Canceled];

    /// <summary>The stored form of a filter; null or empty means every event. An unknown name is invalid input.</summary>
    public static string Normalize(IReadOnlyList<string>? events, string field)
    {
        if (events is null || events.Count == 0)
        {
            return "," + string.Join(",", All) + ",";
        }

        foreach (var e in events)
        {
            if (!All.Contains(e))
            {
                throw AtelierException.InvalidInput(field, $"'{e}' is not an event; the events are {string.Join(", ", All)}");
            }
        }

        return "," + string.Join(",", All.Where(events.Contains)) + ",";
    }

    /// <summary>Whether a job with this webhook and stored filter sends <paramref name="evt"/> (the outbox's own test, in C#).</summary>
    public static bool Wants(string? url, string? stored, string evt) =>
        url is not null && stored is not null && stored.Contains("," + evt + ",", StringComparison.Ordinal);

    public static IReadOnlyList<string> Parse(string? stored) =>
        stored is null ? [] : stored.Split(',', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The event a job's final state sends (an aborted job was canceled whose worker did not stop).</summary>
    public static string? OfFinalState(string state) => state switch
    {
        JobStates.Succeeded => Completed,
        JobStates.Failed => Failed,
        JobStates.Canceled or JobStates.Aborted => Canceled,
        _ => null,
    };
}
