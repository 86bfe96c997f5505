using System.Globalization;
using System.Runtime.InteropServices;

namespace Atelier.Runtime.Local;

/// <summary>Signals to process groups (libc <c>kill</c>) and what Linux's <c>/proc</c> says about a process.</summary>
internal static partial class ProcessGroups
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const string SetsidPath = "/usr/bin/setsid";

    /// <summary>Sends <paramref name="signal"/> to every process of group <paramref name="pgid"/>; false when none is left.</summary>
    public static bool SignalGroup(int pgid, int signal) => pgid > 1 && Kill(-pgid, signal) == 0;

    /// <summary>Sends <paramref name="signal"/> to one process; false when it is gone.</summary>
    public static bool SignalProcess(int pid, int signal) => pid > 1 && Kill(pid, signal) == 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>State, process group and start time (clock ticks after boot) of a live process, or null when there is none.</summary>
    public static ProcStat? ReadStat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        return ParseStat(pid, text);
    }

    /// <summary>Every process whose group is <paramref name="pgid"/> (zombies excluded: they are dead, only not yet reaped).</summary>
    public static List<ProcStat> GroupMembers(int pgid)
    {
        var members = new List<ProcStat>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && ReadStat(pid) is { } stat && stat.Pgrp == pgid && stat.IsAlive)
            {
                members.Add(stat);
            }
        }

        return members;
    }

    public static string? ReadCommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cmdline").Replace('\0', ' ').Trim();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    internal static ProcStat? ParseStat(int pid, string text)
    {
        // The command name (second field) may hold spaces and parentheses: the fields we read follow its last ')'.
        var close = text.LastIndexOf(')');
        if (close < 0)
        {
            return null;
        }

        var fields = text[(close + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // fields[0] is field 3 (state), fields[2] field 5 (pgrp), fields[19] field 22 (starttime).
        if (fields.Length < 20
            || !int.TryParse(fields[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var pgrp)
            || !long.TryParse(fields[19], NumberStyles.Integer, CultureInfo.InvariantCulture, out var start))
        {
            return null;
        }

        return new ProcStat(pid, fields[0][0], pgrp, start);
    }
}

/// <summary>One process as <c>/proc/{pid}/stat</c> shows it.</summary>
internal sealed record ProcStat(int Pid, char State, int Pgrp, long StartTime)
{
    /// <summary>A zombie (Z) or dead (X) process has exited; its entry only waits to be reaped.</summary>
    public bool IsAlive => State is not ('Z' or 'X');
}

/// <summary>
/// <c>{StateDirectory}/instances/{id}.pid</c>: what a later server needs to kill an instance this one left behind, and to
/// tell it from an unrelated process that got the same pid since (its start time, which survives the exec of
/// <c>setsid</c> and of shell wrappers, unlike the command line; the command is kept as a fallback and for people).
/// </summary>
internal sealed record PidFile(string InstanceId, int Pid, int Pgid, long StartTime, string Command)
{
    public void Write(string path)
    {
        var text = string.Create(CultureInfo.InvariantCulture,
            $"pid={Pid}\npgid={Pgid}\nstarttime={StartTime}\ncommand={Command.ReplaceLineEndings(" ")}\n");
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, text);
        File.Move(temporary, path, overwrite: true);
    }

    public static PidFile? TryRead(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (IOException)
        {
            return null;
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            var equals = line.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
            {
                values[line[..equals]] = line[(equals + 1)..];
            }
        }

        if (!values.TryGetValue("pid", out var pidText) || !int.TryParse(pidText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid)
            || !values.TryGetValue("pgid", out var pgidText) || !int.TryParse(pgidText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var pgid))
        {
            return null;
        }

        _ = long.TryParse(values.GetValueOrDefault("starttime"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var start);
        return new PidFile(Path.GetFileNameWithoutExtension(path), pid, pgid, start, values.GetValueOrDefault("command") ?? "");
    }

    /// <summary>
    /// Whether the process group this file names is still the instance's: its leader runs with the recorded start
    /// time (or, without one, the recorded command), or the leader is gone but members it started remain. A group id
    /// cannot be handed out again while members of the group live, so those are the instance's children.
    /// </summary>
    public bool GroupStillRuns()
    {
        if (ProcessGroups.ReadStat(Pid) is { IsAlive: true } leader)
        {
            if (Pgid != 0 && leader.Pgrp != Pgid)
            {
                return false;
            }

            return StartTime != 0
                ? leader.StartTime == StartTime
                : ProcessGroups.ReadCommandLine(Pid)?.Contains(Command, StringComparison.Ordinal) == true;
        }

        return Pgid == Pid && ProcessGroups.GroupMembers(Pgid).Exists(member => member.StartTime >= StartTime);
    }
}
