using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Worker;

/// <summary>
/// A synchronous txt2img answers with the image the worker uploaded: taken from memory when the worker's upload and
/// completion came to the replica the caller waits on (JobHandoff), read from the object store when they went to another.
/// The first two tests replace the stored object's bytes after the upload, so the answer shows where it came from.
/// </summary>
public class SyncHandoffTests
{
    private static readonly byte[] Uploaded = Atelier.Engine.Images.Png.Encode([.. Enumerable.Repeat(new byte[] { 10, 200, 30 }, 64).SelectMany(x => x)], 8, 8);
    private static readonly byte[] Replaced = Atelier.Engine.Images.Png.Encode([.. Enumerable.Repeat(new byte[] { 250, 5, 5 }, 64).SelectMany(x => x)], 8, 8);

    [Theory]
    [InlineData("application/json")]
    [InlineData("image/png")]
    public async Task SyncTxt2Img_WorkerOnTheSameReplica_AnswersWithTheUploadedBytes_NotReadBack(string accept)
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var worker = await WorkerProtocol.RegisterAsync(host, "hand");
        var answer = SyncAsync(host, world, accept);
        await RunJobAsync(host, worker, "hand", [Uploaded], replaceStored: true);
        Assert.Equal(Uploaded, await answer);
    }

    /// <summary>The store keeps an image's last upload, so a key uploaded twice is not answered from memory.</summary>
    [Fact]
    public async Task SyncTxt2Img_ImageUploadedTwice_AnswersWithTheLastUpload()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var worker = await WorkerProtocol.RegisterAsync(host, "twice");
        var answer = SyncAsync(host, world, "image/png");
        await RunJobAsync(host, worker, "twice", [Uploaded, Replaced], replaceStored: false);
        Assert.Equal(Replaced, await answer);
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("image/png")]
    public async Task SyncTxt2Img_WorkerOnAnotherReplica_AnswersWithTheStoredBytes(string accept)
    {
        await using var a = await TestHost.StartAsync();
        // B looks at the queue every second (SQLite has no notifications between replicas; PostgreSQL's wake it at once).
        await using var b = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Jobs:LeaseRecheckSeconds"] = "1" },
            database: a.Database, adminKey: a.AdminKey);
        var world = await Scenario.NewTenantAsync(a);
        var worker = await WorkerProtocol.RegisterAsync(b, "far");
        var answer = SyncAsync(a, world, accept);
        await RunJobAsync(b, worker, "far", [Uploaded], replaceStored: true);
        Assert.Equal(Replaced, await answer);
    }

    /// <summary>The caller's sync txt2img, answered 200: the first image's bytes (base64 in JSON, or the body itself).</summary>
    private static async Task<byte[]> SyncAsync(TestHost host, TenantWorld world, string accept)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, "/sdapi/v1/txt2img")
        {
            Content = JsonContent.Create(new { prompt = "handed over", steps = 1 }),
        };
        req.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", world.AppToken);
        using var resp = await host.Client.Http.SendAsync(req);
        Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        if (accept == "image/png")
        {
            Assert.Equal("image/png", resp.Content.Headers.ContentType?.MediaType);
            return await resp.Content.ReadAsByteArrayAsync();
        }

        using var doc = JsonDocument.Parse(await resp.Content.ReadAsStringAsync());
        return Convert.FromBase64String(doc.RootElement.GetProperty("images")[0].GetString()!);
    }

    /// <summary>
    /// The worker's part, spoken by hand to <paramref name="host"/>: lease the sync call's job, upload each of
    /// <paramref name="uploads"/> as its image 0, with <paramref name="replaceStored"/> replace the stored object with
    /// <see cref="Replaced"/>, then complete.
    /// </summary>
    private static async Task RunJobAsync(TestHost host, ApiClient worker, string workerId, byte[][] uploads, bool replaceStored)
    {
        var leased = (await WorkerProtocol.LeaseAsync(worker, workerId, wait: 60)).Ok();
        var id = leased.GetProperty("id").GetString()!;
        var image = default(System.Text.Json.JsonElement);
        foreach (var bytes in uploads)
        {
            image = (await WorkerProtocol.PutImageAsync(worker, id, 1, 0, bytes)).Ok();
        }

        var key = image.GetProperty("key").GetString()!;
        if (replaceStored)
        {
            await File.WriteAllBytesAsync(Path.Combine(host.Database.Folder, "data", "objects", key), Replaced);
        }

        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new
        {
            attempt = 1,
            result = new { images = new[] { new { key, sha256 = image.GetProperty("sha256").GetString(), size = Replaced.Length, seed = 1, infotext = "handed over" } }, info = "{}" },
        })).Ok();
    }
}
