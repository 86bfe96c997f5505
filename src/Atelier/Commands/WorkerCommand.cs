using System.CommandLine;
using System.Diagnostics;
using Atelier.Engine.Pipeline;
using Atelier.Worker.Runner;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Atelier.Commands;

/// <summary><c>atelier worker</c>: runs jobs leased from a server until Ctrl-C or SIGTERM, a refused key, or the end of its parent.</summary>
internal sealed partial class WorkerCommand : Command
{
    private const string ServerVariable = "ATELIER_SERVER";
    private const string TokenVariable = "ATELIER_WORKER_TOKEN";

    // The record's own defaults, shown in the help and used when an option is left out.
    private static readonly WorkerOptions Defaults = new() { Server = new Uri("http://localhost/"), Token = "" };

    private readonly Option<string> _server = new("--server")
    {
        Description = $"The server's address, e.g. http://SERVER:5080 [default: ${ServerVariable}]",
        HelpName = "URL",
    };

    private readonly Option<string> _token = new("--token")
    {
        Description = $"The worker key (atw_…) issued by the platform admin [default: ${TokenVariable}, which keeps it out of the process list]",
        HelpName = "KEY",
    };

    private readonly Option<string> _engine = new("--engine")
    {
        Description = "Where images are made: builtin (the built-in ONNX engine), a1111=URL (AUTOMATIC1111), comfyui=URL, or noop[=ms] (tests)",
        HelpName = "ENGINE",
        DefaultValueFactory = _ => Defaults.Engine,
    };

    private readonly Option<int> _slots = new("--slots")
    {
        Description = "Jobs run at once",
        HelpName = "N",
        DefaultValueFactory = _ => Defaults.Slots,
    };

    private readonly Option<string> _id = new("--id")
    {
        Description = "This worker's id; it belongs to the key that first registers it",
        HelpName = "ID",
        DefaultValueFactory = _ => Defaults.Id,
    };

    private readonly Option<string> _models = new("--models")
    {
        Description = "The folder of the built-in engine's models (the demo model is written there when it has none)",
        HelpName = "DIR",
        DefaultValueFactory = _ => Defaults.ModelsDirectory,
    };

    private readonly Option<string> _modelCache = new("--model-cache")
    {
        Description = "The folder where model files fetched from the server are kept (one worker process per folder)",
        HelpName = "DIR",
        DefaultValueFactory = _ => Defaults.ModelCacheDirectory,
    };

    private readonly Option<string> _modelCacheBytes = new("--model-cache-bytes")
    {
        Description = "The most the model cache keeps, in bytes (or with K, M, G, T: 20G); least recently used files go first. 0: fetch no models",
        HelpName = "BYTES",
        DefaultValueFactory = _ => "20G",
    };

    private readonly Option<string> _device = new("--device")
    {
        Description = $"With --engine builtin: where it runs, {EngineDevice.Syntax} (CUDA needs the GPU build: README, \"GPU workers\")",
        HelpName = "DEVICE",
        DefaultValueFactory = _ => Defaults.Device,
    };

    private readonly Option<bool> _deviceFallback = new("--device-fallback")
    {
        Description = $"With --device cuda: when CUDA cannot start, run on the CPU with a warning instead of stopping (exit code {ExitCodes.DeviceUnavailable})",
    };

    private readonly Option<string> _memoryBudget = new("--memory-budget")
    {
        Description = "With --engine builtin: the most that loaded models take, in bytes or with K, M, G, T (RAM on the CPU, device memory on CUDA); least recently used models go first",
        HelpName = "BYTES",
        DefaultValueFactory = _ => "8G",
    };

    private readonly Option<string> _cudaMemoryLimit = new("--cuda-memory-limit")
    {
        Description = "With --device cuda: the most device memory ONNX Runtime's CUDA arena takes per model session, in bytes or with K, M, G, T; 0: no limit",
        HelpName = "BYTES",
        DefaultValueFactory = _ => "0",
    };

    private readonly Option<string?> _a1111Models = new("--a1111-models")
    {
        Description = "With --engine a1111=URL: the AUTOMATIC1111 server's checkpoint folder; fetched models are copied there and refresh-checkpoints is called",
        HelpName = "DIR",
    };

    private readonly Option<int?> _parentPid = new("--parent-pid")
    {
        Description = $"Stop (exit code {ExitCodes.ParentGone}) when this process ends; the server gives it to the local worker it starts",
        HelpName = "PID",
    };

    private readonly Option<int?> _healthPort = new("--health-port")
    {
        Description = "Answer GET /healthz on 127.0.0.1:PORT: 200 once registered with the server, 503 before (the local runtime's readiness check)",
        HelpName = "PORT",
    };

    public WorkerCommand()
        : base("worker", $"Run jobs leased from a server until Ctrl-C or SIGTERM. Exit codes: {ExitCodes.Ok} stopped, {ExitCodes.Usage} bad command line, " +
                         $"{ExitCodes.ParentGone} its parent is gone, {ExitCodes.CacheUnavailable} its model cache folder cannot be used, {ExitCodes.KeyRefused} its key was refused")
    {
        Options.Add(_server);
        Options.Add(_token);
        Options.Add(_engine);
        Options.Add(_slots);
        Options.Add(_id);
        Options.Add(_models);
        Options.Add(_modelCache);
        Options.Add(_modelCacheBytes);
        Options.Add(_device);
        Options.Add(_deviceFallback);
        Options.Add(_memoryBudget);
        Options.Add(_cudaMemoryLimit);
        Options.Add(_a1111Models);
        Options.Add(_parentPid);
        Options.Add(_healthPort);
        _server.Validators.Add(r =>
        {
            if (ServerError(r.GetValueOrDefault<string>()) is { } error)
            {
                r.AddError(error);
            }
        });
        _engine.Validators.Add(r =>
        {
            if (EngineError(r.GetValueOrDefault<string>()) is { } error)
            {
                r.AddError(error);
            }
        });
        _device.Validators.Add(r =>
        {
            if (EngineDevice.Parse(r.GetValueOrDefault<string>()) is null)
            {
                r.AddError($"--device must be {EngineDevice.Syntax}, not '{r.GetValueOrDefault<string>()}'.");
            }
        });
        foreach (var bytes in new[] { _memoryBudget, _cudaMemoryLimit })
        {
            bytes.Validators.Add(r =>
            {
                if (Bytes(r.GetValueOrDefault<string>()) is null)
                {
                    r.AddError($"{bytes.Name} must be a number of bytes, optionally with K, M, G or T (8G), not '{r.GetValueOrDefault<string>()}'.");
                }
            });
        }

        _slots.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1)
            {
                r.AddError("--slots must be at least 1.");
            }
        });
        _modelCacheBytes.Validators.Add(r =>
        {
            if (Bytes(r.GetValueOrDefault<string>()) is null)
            {
                r.AddError($"--model-cache-bytes must be a number of bytes, optionally with K, M, G or T (20G), not '{r.GetValueOrDefault<string>()}'.");
            }
        });
        _healthPort.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is < 1 or > 65535)
            {
                r.AddError("--health-port must be a port (1 to 65535).");
            }
        });
        _parentPid.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is < 1)
            {
                r.AddError("--parent-pid must be a process id (1 or more).");
            }
        });
        // What may come from the environment is checked here, where the option may be missing.
        Validators.Add(r =>
        {
            var server = r.GetValue(_server) ?? Environment.GetEnvironmentVariable(ServerVariable);
            if (server is null)
            {
                r.AddError($"--server URL (or {ServerVariable}) is required.");
            }
            else if (r.GetValue(_server) is null && ServerError(server) is { } error)
            {
                r.AddError($"{ServerVariable}: {error}");
            }

            if (string.IsNullOrEmpty(r.GetValue(_token) ?? Environment.GetEnvironmentVariable(TokenVariable)))
            {
                r.AddError($"--token KEY (or {TokenVariable}) is required.");
            }

            if (r.GetValue(_a1111Models) is not null && r.GetValue(_engine)?.StartsWith("a1111=", StringComparison.Ordinal) != true)
            {
                r.AddError("--a1111-models goes with --engine a1111=URL (it is that server's checkpoint folder).");
            }
        });
        SetAction((parse, _) => RunAsync(Read(parse)));
    }

    private WorkerOptions Read(ParseResult parse)
    {
        var server = parse.GetValue(_server) ?? Environment.GetEnvironmentVariable(ServerVariable)!;
        return new WorkerOptions
        {
            Server = new Uri(server.EndsWith('/') ? server : server + "/"),
            Token = parse.GetValue(_token) ?? Environment.GetEnvironmentVariable(TokenVariable)!,
            Engine = parse.GetValue(_engine)!,
            Slots = parse.GetValue(_slots),
            Id = parse.GetValue(_id)!,
            ModelsDirectory = parse.GetValue(_models)!,
            ModelCacheDirectory = parse.GetValue(_modelCache)!,
            ModelCacheBytes = Bytes(parse.GetValue(_modelCacheBytes))!.Value,
            A1111ModelsDirectory = parse.GetValue(_a1111Models),
            Device = parse.GetValue(_device)!,
            DeviceFallback = parse.GetValue(_deviceFallback),
            MemoryBudgetBytes = Bytes(parse.GetValue(_memoryBudget))!.Value,
            CudaMemoryLimitBytes = Bytes(parse.GetValue(_cudaMemoryLimit))!.Value,
            ParentPid = parse.GetValue(_parentPid),
            HealthPort = parse.GetValue(_healthPort),
        };
    }

    /// <summary>A size in bytes: digits, optionally followed by K, M, G or T (powers of 1024); null when it is not one.</summary>
    internal static long? Bytes(string? text)
    {
        var t = text?.Trim() ?? "";
        var shift = t.Length > 0 ? char.ToUpperInvariant(t[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 } : 0;
        var digits = shift > 0 ? t[..^1] : t;
        return long.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n <= long.MaxValue >> shift
            ? n << shift
            : null;
    }

    private static string? ServerError(string? server) => IsHttpUrl(server) ? null : $"--server must be an http or https URL, not '{server}'.";

    private static bool IsHttpUrl(string? text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    /// <summary>The syntax <see cref="WorkerHost.CreateEngine"/> accepts, checked before anything starts.</summary>
    private static string? EngineError(string? spec)
    {
        var eq = spec?.IndexOf('=', StringComparison.Ordinal) ?? -1;
        var (name, arg) = eq > 0 ? (spec![..eq], spec[(eq + 1)..]) : (spec, null);
        var valid = name switch
        {
            "builtin" => arg is null,
            "a1111" or "comfyui" => IsHttpUrl(arg),
            "noop" => arg is null || int.TryParse(arg, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _),
            _ => false,
        };
        return valid ? null : $"--engine must be builtin, a1111=URL, comfyui=URL or noop[=ms], not '{spec}'.";
    }

    private static async Task<int> RunAsync(WorkerOptions options)
    {
        using var loggers = LoggerFactory.Create(b => b.AddJsonConsole(o =>
        {
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        }));
        var logger = loggers.CreateLogger("Atelier.Worker");
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        var parentGone = false;
        var watching = options.ParentPid is { } pid ? WatchParentAsync(pid, () =>
        {
            parentGone = true;
            LogParentGone(logger, pid);
            stop.Cancel();
        }, stop.Token) : Task.CompletedTask;

        WorkerHost created;
        try
        {
            created = new WorkerHost(options, logger);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogCacheUnavailable(logger, options.ModelCacheDirectory, e.Message, ExitCodes.CacheUnavailable);
            await stop.CancelAsync();
            await watching;
            return ExitCodes.CacheUnavailable;
        }
        catch (DeviceUnavailableException e)
        {
            LogDeviceUnavailable(logger, e.Message, ExitCodes.DeviceUnavailable);
            await Console.Error.WriteLineAsync($"atelier worker: {e.Message}");
            await stop.CancelAsync();
            await watching;
            return ExitCodes.DeviceUnavailable;
        }

        using var host = created;
        if (host.Engine is Atelier.Worker.Adapters.BuiltinAdapter { Device: var device })
        {
            if (device.Warning is { } warning)
            {
                LogDeviceFallback(logger, warning);
            }

            LogDevice(logger, device.Device.ToString(), device.Provider);
        }

        await using var health = options.HealthPort is { } port ? await HealthAsync(port, host) : null;
        try
        {
            await host.RunAsync(stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (WorkerKeyRefusedException e)
        {
            LogKeyRefused(logger, e.Message, ExitCodes.KeyRefused);
            await stop.CancelAsync();
            await watching;
            return ExitCodes.KeyRefused;
        }

        await stop.CancelAsync();
        await watching;
        return parentGone ? ExitCodes.ParentGone : ExitCodes.Ok;
    }

    /// <summary>
    /// Calls <paramref name="gone"/> once the process <paramref name="pid"/> has ended (checked every second; its start
    /// time guards against a new process that got the same id).
    /// </summary>
    /// <summary>The health port: <c>GET /healthz</c> is 200 once the worker has registered, 503 before.</summary>
    private static async Task<Microsoft.AspNetCore.Builder.WebApplication> HealthAsync(int port, WorkerHost host)
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        builder.Logging.ClearProviders();
        builder.Services.AddHealthChecks().AddCheck("registered", () => host.Registered
            ? Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy("registered")
            : Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Unhealthy("not registered with the server yet"));
        var app = builder.Build();
        app.MapHealthChecks("/healthz");
        await app.StartAsync();
        return app;
    }

    private static async Task WatchParentAsync(int pid, Action gone, CancellationToken stop)
    {
        var started = StartTimeOf(pid);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (started is null || StartTimeOf(pid) != started)
                {
                    gone();
                    return;
                }

                await Task.Delay(TimeSpan.FromSeconds(1), stop);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static DateTime? StartTimeOf(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited ? null : process.StartTime;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    [LoggerMessage(5010, LogLevel.Critical, "The server refused this worker's key ({Reason}): it was revoked, replaced or never issued. Stopping with exit code {ExitCode}; issue a new key (POST /api/v1/platform/worker-keys) and start the worker with it")]
    private static partial void LogKeyRefused(ILogger logger, string reason, int exitCode);

    [LoggerMessage(5012, LogLevel.Critical, "The model cache {Folder} cannot be used ({Reason}); stopping with exit code {ExitCode}. Give this worker a folder of its own with --model-cache")]
    private static partial void LogCacheUnavailable(ILogger logger, string folder, string reason, int exitCode);

    [LoggerMessage(5013, LogLevel.Critical, "{Reason}; stopping with exit code {ExitCode}")]
    private static partial void LogDeviceUnavailable(ILogger logger, string reason, int exitCode);

    [LoggerMessage(5014, LogLevel.Warning, "{Reason}")]
    private static partial void LogDeviceFallback(ILogger logger, string reason);

    [LoggerMessage(5015, LogLevel.Information, "The built-in engine runs on {Device} ({Provider})")]
    private static partial void LogDevice(ILogger logger, string device, string provider);

    [LoggerMessage(5011, LogLevel.Warning, "The process that started this worker (pid {Pid}) is gone: stopping")]
    private static partial void LogParentGone(ILogger logger, int pid);
}
