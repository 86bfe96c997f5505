namespace Atelier.Engine.Pipeline;

/// <summary>
/// Native ONNX Runtime objects used by reference: <see cref="TryEnter"/> counts a user, <see cref="Exit"/> ends a use,
/// and <see cref="Dispose"/> retires them, freeing them now when nobody uses them, else when the last user exits.
/// Freeing a session under a running call crashes the process, so nothing frees one any other way.
/// </summary>
public abstract class SharedNative : IDisposable
{
    private readonly Lock _life = new();
    private int _users;
    private bool _retired;

    /// <summary>Counts a user; false once freed (retired with no user left). Retired but still used, it stays usable.</summary>
    internal bool TryEnter()
    {
        lock (_life)
        {
            if (_retired && _users == 0)
            {
                return false;
            }

            _users++;
            return true;
        }
    }

    /// <summary>Ends a use; the last one out of a retired object frees it.</summary>
    internal void Exit()
    {
        bool free;
        lock (_life)
        {
            _users--;
            free = _retired && _users == 0;
        }

        if (free)
        {
            Free();
        }
    }

    /// <summary>Retires it: freed now when idle, else when its last user exits.</summary>
    public void Dispose()
    {
        bool free;
        lock (_life)
        {
            if (_retired)
            {
                return;
            }

            _retired = true;
            free = _users == 0;
        }

        if (free)
        {
            Free();
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the native objects, once.</summary>
    protected abstract void Free();
}
