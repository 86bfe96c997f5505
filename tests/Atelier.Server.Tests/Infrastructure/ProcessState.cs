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

    /// <summary>The running processes whose command line has <paramref name="argument"/> (an exact argument, or one that starts with it), like <c>pgrep -f</c>.</summary>
    public static IReadOnlyList<int> WithArgument(string argument)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid))
            {
                continue;
            }

            try
            {
                var args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (args.Any(a => a.StartsWith(argument, StringComparison.Ordinal)) && IsRunning(pid))
                {
                    found.Add(pid);
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return found;
    }
}
