using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>
/// A real HTTP server on loopback that model downloads fetch from: files by name, a slow file, a flaky file
/// (500 twice, then the bytes), an empty answer, a 404, and a redirect. It counts the TCP connections it accepts.
/// </summary>
public sealed class FileServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Dictionary<string, byte[]> _files = [];
    private int _connections;
    private int _flakyHits;

    private FileServer(WebApplication app) => _app = app;

    public Uri BaseAddress { get; private set; } = null!;
    public int Connections => Volatile.Read(ref _connections);
    public int FlakyHits => Volatile.Read(ref _flakyHits);

    /// <summary>Bytes per second of the slow route.</summary>
    public int SlowBytesPerSecond { get; set; } = 64 * 1024;

    public static async Task<FileServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        FileServer? self = null;
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, l => l.Use(next => ctx =>
        {
            Interlocked.Increment(ref self!._connections);
            return next(ctx);
        })));
        var app = builder.Build();
        self = new FileServer(app);
        app.MapGet("/files/{name}", (string name) => self._files.TryGetValue(name, out var b) ? Results.Bytes(b, "application/octet-stream") : Results.NotFound());
        app.MapGet("/slow/{name}", async (string name, HttpContext http) =>
        {
            var bytes = self._files[name];
            http.Response.ContentLength = bytes.Length;
            var chunk = Math.Max(1, self.SlowBytesPerSecond / 20);
            for (var i = 0; i < bytes.Length; i += chunk)
            {
                await http.Response.Body.WriteAsync(bytes.AsMemory(i, Math.Min(chunk, bytes.Length - i)), http.RequestAborted);
                await http.Response.Body.FlushAsync(http.RequestAborted);
                await Task.Delay(50, http.RequestAborted);
            }
        });
        app.MapGet("/flaky/{name}", (string name) =>
            Interlocked.Increment(ref self._flakyHits) <= 2 ? Results.StatusCode(500) : Results.Bytes(self._files[name], "application/octet-stream"));
        app.MapGet("/empty", () => Results.Bytes([], "application/octet-stream"));
        app.MapGet("/redirect", (string to) => Results.Redirect(to));
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self.BaseAddress = new Uri(address);
        return self;
    }

    public string Add(string name, byte[] bytes)
    {
        _files[name] = bytes;
        return new Uri(BaseAddress, $"/files/{name}").ToString();
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Builds small but real model files.</summary>
public static class ModelFiles
{
    /// <summary>A safetensors file: 8-byte little-endian header length, the JSON header, then F32 data.</summary>
    public static byte[] Safetensors(IEnumerable<string> tensorNames, IDictionary<string, string>? metadata = null, int floatsPerTensor = 16)
    {
        var header = new Dictionary<string, object>();
        if (metadata is not null)
        {
            header["__metadata__"] = metadata;
        }

        long offset = 0;
        foreach (var name in tensorNames)
        {
            header[name] = new { dtype = "F32", shape = new[] { floatsPerTensor }, data_offsets = new[] { offset, offset + (4 * floatsPerTensor) } };
            offset += 4 * floatsPerTensor;
        }

        var json = System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(header));
        var data = new byte[offset];
        new Random(json.Length).NextBytes(data);
        var file = new byte[8 + json.Length + data.Length];
        BitConverter.GetBytes((ulong)json.Length).CopyTo(file, 0);
        json.CopyTo(file, 8);
        data.CopyTo(file, 8 + json.Length);
        return file;
    }

    public static byte[] Lora(string salt = "") =>
        Safetensors(["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight" + salt, "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", "lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha"],
            new Dictionary<string, string> { ["ss_network_module"] = "networks.lora" });

    public static byte[] Checkpoint() =>
        Safetensors([.. Enumerable.Range(0, 8).Select(i => $"model.diffusion_model.input_blocks.{i}.0.weight"), "first_stage_model.decoder.conv_in.weight", "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"]);

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
