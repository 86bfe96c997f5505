using System.Globalization;
using System.Text.Json;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Runtime;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Agents;

/// <summary>Where this server is, as its units' workers reach it: set by the server once it listens.</summary>
public sealed class WorkerServerAddress
{
    /// <summary>The server's own loopback address (local units).</summary>
    public string? Loopback { get; set; }

    /// <summary>The server's data folder (local units keep their models under it).</summary>
    public string DataDirectory { get; set; } = "data";
}

/// <summary>
/// A unit's agent function as a runtime workload: <c>atelier worker</c> for the unit's agent, with the unit's worker key
/// (issued here, stored sealed, injected as <c>ATELIER_WORKER_TOKEN</c>), the version's engine, arguments and
/// environment, and the instance type's slots, GPUs and node labels.
/// </summary>
public sealed class AgentWorkloads(MasterKeys keys, TimeProvider clock, IOptions<AgentsOptions> options, WorkerServerAddress address)
{
    public const string TokenVariable = "ATELIER_WORKER_TOKEN";

    /// <summary>A new worker key for the unit: the row (hashed) and the secret sealed for the agent function.</summary>
    public (PlatformKey Key, byte[] Cipher) IssueKey(ComputingUnit unit)
    {
        var secret = Secrets.Issue(Secrets.WorkerKeyPrefix);
        var key = new PlatformKey
        {
            Id = Ids.New("wk", clock), Scope = "worker", SecretHash = Secrets.Hash(secret), DisplayPrefix = Secrets.DisplayPrefix(secret),
            CreatedAt = clock.GetUtcNow().UtcDateTime, Name = $"unit {unit.Id}", TenantId = unit.TenantId, AgentId = unit.AgentId, UnitId = unit.Id,
        };
        return (key, SecretSeal.Seal(keys, KeyPurpose.RuntimeSecrets, secret));
    }

    /// <summary>The workload's name on a backend: a DNS-1035 label from the unit id.</summary>
    public static string WorkloadName(string unitId) => "agent-" + unitId.Replace('_', '-').ToLowerInvariant();

    public WorkloadSpec Spec(RuntimeRegion region, ComputingUnit unit, AgentVersion version, PoolCapacity.InstanceType type, AgentFunction function, int replicas)
    {
        if (!SecretSeal.TryOpen(keys, KeyPurpose.RuntimeSecrets, function.KeyCipher, out var secret))
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"the worker key of unit {unit.Id} cannot be opened with this master key (redeploy the unit)");
        }

        var extra = JsonSerializer.Deserialize<List<string>>(version.ArgsJson) ?? [];
        var env = JsonSerializer.Deserialize<Dictionary<string, string>>(version.EnvJson) ?? [];
        var slots = type.SlotsPerReplica.ToString(CultureInfo.InvariantCulture);
        var labels = new Dictionary<string, string> { ["atelier.dev/unit"] = WorkloadName(unit.Id), ["atelier.dev/agent"] = WorkloadName(unit.AgentId) };
        var secrets = new Dictionary<string, string> { [TokenVariable] = secret };
        if (region.Backend == "local")
        {
            var server = address.Loopback ?? throw new RuntimeException(RuntimeErrors.InvalidSpec, "the server does not listen on an http address yet");
            var (file, prefix) = ThisExecutable.Command(options.Value.WorkerCommand);
            var models = Path.GetFullPath(Path.Combine(address.DataDirectory, options.Value.ModelsFolder));
            var cache = Path.GetFullPath(Path.Combine(address.DataDirectory, "model-cache"));
            return new WorkloadSpec
            {
                Name = function.Name, Command = file, Replicas = replicas, Environment = env, Secrets = secrets, Labels = labels, HealthPath = "/healthz",
                Args =
                [
                    // {slot} is the replica's number on this machine, stable when a replica is replaced: its worker id and its own
                    // model cache (a cache folder belongs to one worker process at a time).
                    .. prefix, "worker", "--server", server, "--engine", version.Engine, "--slots", slots, "--id", $"{function.Name}-{{slot}}",
                    "--models", models, "--model-cache", Path.Combine(cache, $"{function.Name}-{{slot}}"),
                    "--parent-pid", Environment.ProcessId.ToString(CultureInfo.InvariantCulture), "--health-port", "{port}", .. extra,
                ],
            };
        }

        var url = options.Value.ServerUrl
                  ?? throw new RuntimeException(RuntimeErrors.InvalidSpec, $"Atelier:Agents:ServerUrl is not set: workers in region {region.Name} do not know where the server is");
        // The built-in engine on an instance type with GPUs runs on them (the image is the GPU build), unless the version
        // names its own device.
        var device = type.Gpus > 0 && version.Engine == "builtin" && !extra.Contains("--device") ? (string[])["--device", "cuda"] : [];
        return new WorkloadSpec
        {
            Name = function.Name, Image = version.Image, Replicas = replicas, Environment = env, Secrets = secrets, Labels = labels, Gpus = type.Gpus,
            NodeSelector = type.NodeSelector, Args = ["worker", "--server", url, "--engine", version.Engine, "--slots", slots, .. device, .. extra],
        };
    }
}
