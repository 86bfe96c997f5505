using System.Text.Json;
using System.Text.Json.Nodes;

namespace Atelier.Core.Jobs;

/// <summary>
/// Where the running attempt's worker stands in fetching the job's model (from its heartbeats): kept beside the model in
/// the job's model JSON, so no column is needed, and shown by the jobs API only for the attempt that reported it.
/// </summary>
public sealed record JobDelivery(int Attempt, string Stage, long? BytesDone, long? BytesTotal)
{
    private const string Property = "Delivery";

    /// <summary>The job's model JSON with this delivery state in it (replacing an earlier one).</summary>
    public string WriteInto(string modelJson)
    {
        var node = JsonNode.Parse(modelJson)?.AsObject() ?? [];
        node[Property] = JsonSerializer.SerializeToNode(this);
        return node.ToJsonString();
    }

    /// <summary>The delivery state in a job's model JSON, or null when none was reported.</summary>
    public static JobDelivery? ReadFrom(string? modelJson)
    {
        if (modelJson is null)
        {
            return null;
        }

        using var doc = JsonDocument.Parse(modelJson);
        return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(Property, out var d) && d.ValueKind == JsonValueKind.Object
            ? d.Deserialize<JobDelivery>()
            : null;
    }
}
