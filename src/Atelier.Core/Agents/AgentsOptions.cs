using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Agents;

/// <summary>Agents, computing units and the autoscaler (<c>Atelier:Agents</c>).</summary>
public sealed partial class AgentsOptions
{
    public const string SectionName = "Atelier:Agents";

    /// <summary>Seconds between two passes of the autoscaler (in the leader).</summary>
    [Range(1, 3600)]
    public int ScaleIntervalSeconds { get; set; } = 2;

    /// <summary>The scaling decisions kept per unit (older ones are deleted).</summary>
    [Range(1, 100_000)]
    public int DecisionsKept { get; set; } = 200;

    /// <summary>The most seconds between two tries of a scale call that failed (the wait doubles from 1 s).</summary>
    [Range(1, 3600)]
    public int MaxScaleBackoffSeconds { get; set; } = 60;

    /// <summary>
    /// The server's address as workers in a Kubernetes region reach it (<c>https://atelier.example.com</c>); needed for
    /// units in kubernetes regions. Units in the <c>local</c> region use the server's own loopback address.
    /// </summary>
    public string? ServerUrl { get; set; }

    /// <summary>What runs <c>atelier worker</c> for a unit on the local backend; empty: this executable.</summary>
    public string? WorkerCommand { get; set; }

    /// <summary>Where the workers of local units keep their model files (under the data folder when relative).</summary>
    public string ModelsFolder { get; set; } = "models";

    [OptionsValidator]
    internal sealed partial class Validator : IValidateOptions<AgentsOptions>;
}
