namespace Atelier.Contracts.Platform;

/// <summary>
/// The server replica that answered: its id (<c>host:pid:start</c>, stable for the life of the process), whether it
/// is the leader (the one replica that runs the work done once across replicas), its term (how many times this
/// replica has become the leader; it keeps its last term when it is not the leader), since when it leads (null when
/// it does not), and when the process started.
/// </summary>
public sealed record ReplicaDto(string Id, bool IsLeader, long Term, DateTime? LeaderSince, DateTime StartedAt);
