namespace Atelier.Data.Entities;

[Flags]
public enum TokenScopes
{
    None = 0,
    Admin = 1,
    App = 2,
}
