namespace Atelier.Data.Entities;

/// <summary>A registered worker: its slots and the model each slot has loaded (its hot request info).</summary>
public sealed class WorkerNode
{
    public required string Id { get; set; }
    public required string KeyId { get; set; }
    public required string Engine { get; set; }
    public int Slots { get; set; }
    /// <summary>JSON array, one entry per slot: the model key it has loaded, or null.</summary>
    public string HotJson { get; set; } = "[]";
    public DateTime RegisteredAt { get; set; }
    public DateTime LastSeenAt { get; set; }
}
