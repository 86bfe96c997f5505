namespace Atelier.Data.Entities;

public sealed class Account
{
    public required string Uid { get; set; }
    public required string Name { get; set; }
    public DateTime CreatedAt { get; set; }
}
