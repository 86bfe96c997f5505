using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>
/// Every line the server logs at Information or above (every category, scopes and exceptions included), kept in memory
/// for a test that checks what the server writes to its logs (a credential never in a line, say). Opt-in: pass one to
/// <see cref="TestHost.StartAsync"/>; the other tests keep the host's Warning level and its console output only.
/// </summary>
public sealed class LogCapture : ILoggerProvider, ISupportExternalScope
{
    private readonly ConcurrentQueue<string> _lines = new();
    private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

    public IReadOnlyList<string> Lines => [.. _lines];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private sealed class Logger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => owner._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var line = new StringBuilder($"{logLevel} {category} {formatter(state, exception)}");
            if (state is IEnumerable<KeyValuePair<string, object?>> values)
            {
                foreach (var (k, v) in values)
                {
                    line.Append(' ').Append(k).Append('=').Append(v);
                }
            }

            owner._scopes.ForEachScope((scope, sb) => sb.Append(" scope=").Append(scope is IEnumerable<KeyValuePair<string, object?>> kv
                ? string.Join(",", kv.Select(p => $"{p.Key}={p.Value}")) : scope), line);
            if (exception is not null)
            {
                line.Append(' ').Append(exception);
            }

            owner._lines.Enqueue(line.ToString());
        }
    }
}
