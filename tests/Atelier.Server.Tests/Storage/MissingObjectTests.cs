using System.Net;
using Atelier.Contracts.Errors;
using Atelier.Data;
using Atelier.Server.Tests.Infrastructure;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Storage;

/// <summary>
/// A record whose stored bytes are gone (deleted or lost behind Atelier's back) answers 410 in the envelope on every
/// route that opens a stored object, never a 500; and the record can still be deleted. On both backends.
/// </summary>
public class MissingObjectTests
{
    private static Dictionary<string, string> Settings(string backend) => backend == "s3"
        ? new Dictionary<string, string>
        {
            ["Atelier:Storage:Provider"] = "s3",
            ["Atelier:Storage:S3ServiceUrl"] = Environment.GetEnvironmentVariable("ATELIER_TEST_S3")
                                               ?? throw new InvalidOperationException("ATELIER_TEST_S3 is not set: run the tests through scripts/test.sh, which starts s3rver"),
            ["Atelier:Storage:S3Bucket"] = "atelier", ["Atelier:Storage:S3AccessKey"] = "S3RVER", ["Atelier:Storage:S3SecretKey"] = "S3RVER",
        }
        : [];

    [Theory]
    [InlineData("local")]
    [InlineData("s3")]
    public async Task AnImageWhoseBytesAreGone_Answers410_NeverA500(string backend)
    {
        await using var host = await TestHost.StartAsync(Settings(backend));
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, "noop");
        var app = world.AppOf(host);
        var task = (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "a lighthouse", steps = 2, width = 64, height = 64 }))
            .Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString()!;
        await Eventually.ValueAsync(async () => (await app.GetAsync($"/api/v1/tasks/{task}")).Ok().GetProperty("state").GetString(),
            s => s == "succeeded", "the job succeeds");
        var image = (await app.GetAsync($"/api/v1/images?jobId={task}")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;
        var url = (await app.GetAsync($"/api/v1/images/{image}")).Ok().GetProperty("url").GetString()!;
        using (var before = await host.Client.Http.GetAsync(url))
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        // The bytes go, the records stay.
        string key;
        using (var scope = host.Services.CreateScope())
        {
            key = await scope.ServiceProvider.GetRequiredService<AtelierDb>().GeneratedImages.IgnoreQueryFilters()
                .Where(i => i.Id == image).Select(i => i.StorageKey).SingleAsync();
        }

        var store = host.Services.GetRequiredService<IObjectStore>();
        await store.DeleteAsync(key, CancellationToken.None);
        Assert.Null(await store.SizeAsync(key, CancellationToken.None));

        foreach (var gone in new[] { await host.Client.GetAsync(url), await app.GetAsync($"/api/v1/tasks/{task}/images/0") })
        {
            Assert.Equal("object_missing", gone.Error(ErrorCatalog.p_common_inputinvalid, 410).GetProperty("errCode").GetString());
        }

        // The record's metadata still answers, and deleting it works.
        (await app.GetAsync($"/api/v1/images/{image}")).Ok();
        var deleted = (await app.PostAsync("/api/v1/images/delete", new { ids = new[] { image } })).Ok();
        Assert.Equal(image, deleted.GetProperty("deleted")[0].GetString());
        (await app.GetAsync($"/api/v1/images/{image}")).Error(ErrorCatalog.p_common_inputinvalid, 404);
    }
}
