namespace Atelier.Data.Entities;

/// <summary>A cluster's kube config, sealed with the master key's runtime-secrets key; never returned by the API.</summary>
public sealed class KubeConfig
{
    public required string Id { get; set; }
    public required string Name { get; set; }
    public required byte[] ConfigCipher { get; set; }
    public DateTime CreatedAt { get; set; }
}
