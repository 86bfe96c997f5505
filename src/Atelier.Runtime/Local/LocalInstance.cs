using System.ComponentModel;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Atelier.Runtime.Local;

internal enum InstanceState
{
    /// <summary>Launched or about to be, not yet healthy: counts toward the function's instances, serves nothing.</summary>
    Starting,

    Ready,

    /// <summary>Taken out of its pool (stopped on purpose, or found dead); its process group is being killed.</summary>
    Stopping,
}

/// <summary>
/// One child process serving one revision, in a process group of its own (started through <c>setsid</c>) so that
/// stopping it reaches whatever it forked. <see cref="State"/>, <see cref="InFlight"/> and <see cref="LastUsed"/>
/// belong to the backend and are read and written under its lock; the process itself is guarded here.
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "The process and its log are released when the instance stops (StopAsync), which every instance reaches.")]
internal sealed class LocalInstance(string id, RevisionPool pool, ILogger logger, Action<LocalInstance> onExit)
{
    private const int StderrTailLines = 20;
    private static readonly TimeSpan KillWait = TimeSpan.FromSeconds(10);

    private readonly Lock _sync = new();
    private readonly Queue<string> _stderrTail = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Process? _process;
    private Task? _stopTask;
    private InstanceLog? _log;
    private string? _pidFile;

    public string Id { get; } = id;

    public RevisionPool Pool { get; } = pool;

    /// <summary>The lowest number no other live instance of its revision holds (<c>{slot}</c> in arguments): stable across replacements.</summary>
    public int Slot { get; init; }

    public InstanceState State { get; set; } = InstanceState.Starting;

    public int InFlight { get; set; }

    public DateTimeOffset LastUsed { get; set; }

    /// <summary>When it became ready, as a <see cref="Stopwatch"/> timestamp (real time: how long the process really ran).</summary>
    public long ReadyTimestamp { get; set; }

    /// <summary>Set when the backend lets go of the instance without stopping it (a test standing in for a crashed server).</summary>
    public bool Abandoned { get; private set; }

    public int Port { get; private set; }

    public int Pid { get; private set; }

    public bool OwnGroup { get; private set; }

    public Uri Destination { get; private set; } = new("http://127.0.0.1/");

    public Task Exited => _exited.Task;

    public bool HasExited => _exited.Task.IsCompleted;

    public int ExitCode { get; private set; }

    public bool StopRequested
    {
        get
        {
            lock (_sync)
            {
                return _stopTask is not null;
            }
        }
    }

    /// <summary>Starts the process (unless a stop came first) and writes its pid file.</summary>
    public void Launch(ProcessStartInfo startInfo, int port, bool ownGroup, string command, string pidFile, string? logFile, long logMaxBytes)
    {
        lock (_sync)
        {
            if (_stopTask is not null)
            {
                throw new RuntimeException(RuntimeErrors.NotDeployed, $"Instance {Id} was stopped before it started.");
            }

            var process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
            process.OutputDataReceived += (_, e) => OnLine("stdout", e.Data);
            process.ErrorDataReceived += (_, e) => OnLine("stderr", e.Data);
            process.Exited += (sender, _) => OnProcessExited((Process)sender!);
            if (logFile is not null && logMaxBytes > 0)
            {
                _log = new InstanceLog(logFile, logMaxBytes, logger);
            }

            try
            {
                process.Start();
            }
            catch (Win32Exception ex)
            {
                process.Dispose();
                _log?.Dispose();
                throw new RuntimeException(RuntimeErrors.CommandNotFound, $"Could not start '{command}': {ex.Message}", ex);
            }

            _process = process;
            Pid = process.Id;
            Port = port;
            OwnGroup = ownGroup;
            Destination = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}/"));
            // The instance gets an empty stdin rather than the server's terminal.
            process.StandardInput.Close();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            // Start time is fixed at fork, so reading it before setsid execs the command is fine.
            var startTime = ProcessGroups.ReadStat(Pid)?.StartTime ?? 0;
            new PidFile(Id, Pid, ownGroup ? Pid : 0, startTime, command).Write(pidFile);
            _pidFile = pidFile;
        }
    }

    /// <summary>
    /// SIGTERM to the group, up to <paramref name="grace"/> for the instance to exit, then SIGKILL to the group: the
    /// leader ignoring SIGTERM, and children that outlived it, are killed. Idempotent; later callers share the first stop.
    /// </summary>
    public Task StopAsync(TimeSpan grace)
    {
        lock (_sync)
        {
            return _stopTask ??= _process is null ? Task.CompletedTask : StopCoreAsync(grace);
        }
    }

    /// <summary>Lets go of the process without stopping it; its pid file stays (what a server crash leaves).</summary>
    public void Abandon()
    {
        lock (_sync)
        {
            Abandoned = true;
            _stopTask ??= Task.CompletedTask;
        }
    }

    /// <summary>The exit code and the last lines the instance wrote to stderr (waiting briefly for the pipe to drain).</summary>
    public async Task<string> DescribeExitAsync()
    {
        await WithinAsync(_stderrClosed.Task, TimeSpan.FromSeconds(2));
        string[] tail;
        lock (_stderrTail)
        {
            tail = [.. _stderrTail];
        }

        var code = ExitCode.ToString(CultureInfo.InvariantCulture);
        return tail.Length == 0 ? $"exit code {code}, nothing on stderr" : $"exit code {code}; last stderr lines:\n{string.Join('\n', tail)}";
    }

    /// <summary>Whether <paramref name="task"/> completed within <paramref name="timeout"/> (real time: processes do not follow a test's clock).</summary>
    public static async Task<bool> WithinAsync(Task task, TimeSpan timeout)
    {
        if (task.IsCompleted)
        {
            return true;
        }

        using var cancel = new CancellationTokenSource();
        var done = await Task.WhenAny(task, Task.Delay(timeout, cancel.Token));
        await cancel.CancelAsync();
        return done == task;
    }

    private async Task StopCoreAsync(TimeSpan grace)
    {
        if (!HasExited)
        {
            Signal(ProcessGroups.SigTerm);
            if (!await WithinAsync(_exited.Task, grace))
            {
                logger.StopEscalated(Id, grace);
            }
        }

        Signal(ProcessGroups.SigKill);
        await WithinAsync(_exited.Task, KillWait);
        if (_pidFile is not null)
        {
            TryDelete(_pidFile);
        }

        _log?.Dispose();
        if (HasExited)
        {
            _process?.Dispose();
        }
    }

    private void Signal(int signal)
    {
        // Right after the fork setsid may not have made the group yet: then the process itself is signalled.
        var sent = OwnGroup && ProcessGroups.SignalGroup(Pid, signal);
        if (!sent && !HasExited)
        {
            ProcessGroups.SignalProcess(Pid, signal);
        }
    }

    private void OnProcessExited(Process process)
    {
        try
        {
            ExitCode = process.ExitCode;
        }
        catch (InvalidOperationException)
        {
            ExitCode = -1;
        }

        _exited.TrySetResult();
        onExit(this);
    }

    private void OnLine(string stream, string? line)
    {
        if (line is null)
        {
            if (stream == "stderr")
            {
                _stderrClosed.TrySetResult();
            }

            return;
        }

        if (stream == "stderr")
        {
            lock (_stderrTail)
            {
                _stderrTail.Enqueue(line);
                while (_stderrTail.Count > StderrTailLines)
                {
                    _stderrTail.Dequeue();
                }
            }
        }

        logger.InstanceOutput(Id, stream, line);
        _log?.Write(stream, line);
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // A pid file that cannot be deleted is cleaned by the next CleanStaleAsync (its process is gone by then).
        }
    }
}

/// <summary>An instance's stdout and stderr in <c>{StateDirectory}/logs/{id}.log</c>, rotated once at a size bound.</summary>
internal sealed class InstanceLog(string path, long maxBytes, ILogger logger) : IDisposable
{
    private readonly Lock _sync = new();
    private StreamWriter? _writer;
    private long _written;
    private bool _failed;
    private bool _disposed;

    public void Write(string stream, string line)
    {
        lock (_sync)
        {
            if (_failed || _disposed)
            {
                return;
            }

            try
            {
                if (_writer is null || _written > maxBytes)
                {
                    Open();
                }

                var text = $"{stream} {line}\n";
                _writer!.Write(text);
                _writer.Flush();
                _written += text.Length;
            }
            catch (IOException ex)
            {
                _failed = true;
                logger.LogFileFailed(path, ex.Message);
            }
        }
    }

    public void Dispose()
    {
        lock (_sync)
        {
            _disposed = true;
            _writer?.Dispose();
            _writer = null;
        }
    }

    private void Open()
    {
        if (_writer is not null)
        {
            // Full: the current file becomes the previous one, so the disk holds at most two files per instance.
            _writer.Dispose();
            File.Move(path, path + ".1", overwrite: true);
        }

        _writer = new StreamWriter(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read));
        _written = 0;
    }
}
