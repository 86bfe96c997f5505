using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>
/// The real <c>atelier</c> executable as a child process (<c>serve</c> or <c>worker</c>), its output (stdout and stderr)
/// kept, killable with SIGKILL: the one way tests start it, for the tests of the process itself and those where a
/// process must really die. <see cref="TestHost"/> is the one way to start a server inside the test process.
/// </summary>
public sealed partial class AtelierProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private AtelierProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Pid => _process.Id;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    public static AtelierProcess Start(string workingDirectory, params string[] args) => new(Process.Start(StartInfo(workingDirectory, args, null))!);

    /// <summary>Starts it with <paramref name="environment"/> over this process's variables (a null value removes one).</summary>
    public static AtelierProcess Start(string workingDirectory, IReadOnlyDictionary<string, string?> environment, params string[] args) =>
        new(Process.Start(StartInfo(workingDirectory, args, environment))!);

    /// <summary>Runs it to its end and returns its exit code, standard output and standard error (the deadline fails the test).</summary>
    /// <param name="input">Written to its standard input, which is then closed (null: standard input is not redirected).</param>
    public static async Task<(int ExitCode, string Out, string Error)> RunAsync(string workingDirectory, string[] args,
        IReadOnlyDictionary<string, string?>? environment = null, string? input = null)
    {
        var psi = StartInfo(workingDirectory, args, environment);
        psi.RedirectStandardInput = input is not null;
        using var process = Process.Start(psi)!;
        if (input is not null)
        {
            await process.StandardInput.WriteAsync(input);
            process.StandardInput.Close();
        }

        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Eventually.DefaultDeadline);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"atelier {string.Join(' ', args)} did not exit within {Eventually.DefaultDeadline.TotalSeconds:0} s");
        }

        return (process.ExitCode, await output, await error);
    }

    private static ProcessStartInfo StartInfo(string workingDirectory, string[] args, IReadOnlyDictionary<string, string?>? environment)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "atelier.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                psi.Environment.Remove(name);
            }
            else
            {
                psi.Environment[name] = value;
            }
        }

        return psi;
    }

    /// <summary>Whether a loopback port can be listened on now (a killed server's socket is gone).</summary>
    public static bool PortIsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>A loopback port nobody listens on now (so a restarted server can take the same one).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        await Eventually.UntilAsync(() => Output.Contains(text, StringComparison.Ordinal) || _process.HasExited, $"'{text}' appeared in the output", timeout);
        Assert.True(Output.Contains(text, StringComparison.Ordinal), $"the process exited before '{text}' appeared. Output:\n{Output}");
    }

    /// <summary>The address <c>atelier serve</c> says it listens on, once it says so (with port 0 the server picks it).</summary>
    public async Task<Uri> ListeningAddressAsync(TimeSpan timeout)
    {
        await WaitForOutputAsync("Now listening on: ", timeout);
        return new Uri(ListeningLine().Match(Output).Groups[1].Value);
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Waits for the process to end by itself (the deadline fails the test).</summary>
    public async Task WaitForExitAsync(TimeSpan deadline)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(deadline);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"the process did not exit within {deadline.TotalSeconds:0} s. Output:\n{Output}");
        }
    }

    /// <summary>SIGKILL to this process alone: its children live on, as they would after a crash of their parent.</summary>
    public async Task KillAloneAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: false);
        }

        await _process.WaitForExitAsync();
    }

    /// <summary>SIGKILL: no shutdown code runs, nothing is flushed, leases are simply abandoned.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningLine();
}
