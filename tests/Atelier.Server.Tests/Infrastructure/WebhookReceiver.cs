using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>One request a <see cref="WebhookReceiver"/> got: its path, raw body, headers, when, and what it answered.</summary>
public sealed record ReceivedWebhook(string Path, string Body, HeaderDictionary Headers, DateTime At, int Answer)
{
    public string Id => Headers["webhook-id"].ToString();
}

/// <summary>
/// A webhook receiver on loopback (real Kestrel, real HTTP): it records every request with its raw body and headers,
/// and answers what <see cref="Answer"/> says for the path and the number of requests that path has had before.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedWebhook> _received = new();
    private readonly ConcurrentDictionary<string, int> _counts = new();

    private WebhookReceiver(WebApplication app) => _app = app;

    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>(path, earlier requests on that path) → status; 200 unless told otherwise. A 3xx carries <see cref="RedirectTo"/>.</summary>
    public Func<string, int, int> Answer { get; set; } = (_, _) => 200;

    public string? RedirectTo { get; set; }

    public IReadOnlyList<ReceivedWebhook> Received => [.. _received];

    public IReadOnlyList<ReceivedWebhook> On(string path) => [.. _received.Where(r => r.Path == path)];

    public string Url(string path) => new Uri(BaseAddress, path).ToString();

    public static async Task<WebhookReceiver> StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        var self = new WebhookReceiver(app);
        app.MapPost("/{**path}", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            var body = await reader.ReadToEndAsync();
            var path = http.Request.Path.Value!;
            var n = self._counts.AddOrUpdate(path, 1, (_, c) => c + 1) - 1;
            var status = self.Answer(path, n);
            var headers = new HeaderDictionary();
            foreach (var (k, v) in http.Request.Headers)
            {
                headers[k] = new StringValues([.. v]);
            }

            self._received.Enqueue(new ReceivedWebhook(path, body, headers, DateTime.UtcNow, status));
            if (status is >= 300 and < 400 && self.RedirectTo is { } to)
            {
                http.Response.Headers.Location = to;
            }

            http.Response.StatusCode = status;
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        self.BaseAddress = new Uri($"http://127.0.0.1:{new Uri(address).Port}/");
        return self;
    }

    /// <summary>Waits until <paramref name="done"/> holds for what was received, or fails after <paramref name="seconds"/>.</summary>
    public Task WaitForAsync(Func<IReadOnlyList<ReceivedWebhook>, bool> done, double seconds = 60, string what = "webhooks") =>
        Eventually.UntilAsync(() => done(Received), $"{what} arrived ({_received.Count} requests received so far)", TimeSpan.FromSeconds(seconds));

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

/// <summary>A plain TCP listener on every loopback address of a port (IPv4 and IPv6): it only counts the connections it accepts.</summary>
public sealed class ConnectionCounter : IDisposable
{
    private readonly Socket _socket;
    private readonly CancellationTokenSource _stop = new();
    private int _connections;

    public ConnectionCounter()
    {
        _socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
        _socket.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
        _socket.Listen(64);
        Port = ((IPEndPoint)_socket.LocalEndPoint!).Port;
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    using var accepted = await _socket.AcceptAsync(_stop.Token);
                    Interlocked.Increment(ref _connections);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
            }
        });
    }

    public int Port { get; }

    public int Connections => Volatile.Read(ref _connections);

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        _stop.Dispose();
    }
}
