namespace Atelier.Server.Tests.Infrastructure;

/// <summary>What /proc says of a process the tests started (or its server started).</summary>
public static class ProcessState
{
    /// <summary>Alive and not a zombie (an orphan's exit may be reaped late where process 1 does not reap).</summary>
    public static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }
}
