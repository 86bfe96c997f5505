using System.Net;
using System.Security.Cryptography;
using System.Text;
using Atelier.Contracts.Errors;
using Atelier.Core.Security;
using Atelier.Server.Hosting;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Security;

/// <summary>
/// The keys that protect secrets live outside the database (issue 12, item 6): a second server on the same database and
/// the same objects, but without the first one's key, can neither read a webhook secret nor verify an image URL; the key
/// file is the owner's only; a configured key file that is missing stops the start; a rotation keeps old URLs working
/// for the grace period only.
/// </summary>
public class KeyTests
{
    /// <summary>One generated image of <paramref name="world"/> (the no-op engine), and its signed URL as the API hands it out.</summary>
    private static async Task<(string ImageId, string Url)> ImageAsync(TestHost host, TenantWorld world)
    {
        await using var worker = await InProcessWorker.StartAsync(host, "noop");
        var app = world.AppOf(host);
        var task = (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "keys", steps = 2 })).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString()!;
        await Eventually.UntilAsync(async () => (await app.GetAsync($"/api/v1/tasks/{task}")).Ok().GetProperty("state").GetString() == "succeeded", "the image is made");
        var image = (await app.GetAsync($"/api/v1/images?jobId={task}")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;
        return (image, (await app.GetAsync($"/api/v1/images/{image}")).Ok().GetProperty("url").GetString()!);
    }

    /// <summary>A master key as the configuration and the key file take it: base64 of 32 random bytes.</summary>
    private static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    /// <summary>Long periods for the server's periodic timers (moving a fake clock runs each once per period), and <paramref name="extra"/>.</summary>
    private static Dictionary<string, string> Settings(params (string Key, string Value)[] extra) =>
        TestHost.LongTimerPeriods(extra.ToDictionary(e => e.Key, e => e.Value));

    [Fact]
    public async Task DatabaseCopy_WithoutTheKeyFile_CannotReadSecretsNorVerifyOrForgeUrls()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var first = await TestHost.StartAsync(Settings(), database: db);
        var world = await Scenario.NewTenantAsync(first);
        var admin = world.AdminOf(first);
        var secret = (await admin.GetAsync($"/api/v1/apps/{world.AppId}/webhook")).Ok().GetProperty("secret").GetString()!;
        Assert.StartsWith("whsec_", secret, StringComparison.Ordinal);
        var (imageId, url) = await ImageAsync(first, world);
        using (var ok = await first.Client.Http.GetAsync(url))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        // The attack of the issue: an image URL for ten years, signed with a key derived from the database alone.
        var root = Secrets.Hash(first.AdminKey);
        var legacyKey = HMACSHA256.HashData(root, "atelier image urls v1"u8);
        var tenYears = DateTimeOffset.UtcNow.AddYears(10).ToUnixTimeSeconds();
        var forgedSig = Convert.ToHexStringLower(HMACSHA256.HashData(legacyKey, Encoding.UTF8.GetBytes($"{imageId}\n{tenYears}")));
        (await first.Client.GetAsync($"/api/v1/images/{imageId}/content?expires={tenYears}&sig={forgedSig}")).Error(ErrorCatalog.b_session_tokenforbidden, 403);

        // A second server on a copy of everything but the key: the same database, the same objects, its own data folder.
        var elsewhere = Path.Combine(db.Folder, "elsewhere");
        await using var second = await TestHost.StartAsync(Settings(
            ("Atelier:Server:DataDirectory", elsewhere), ("Atelier:Storage:LocalPath", Path.Combine(db.Folder, "data", "objects"))), database: db);
        Assert.NotEqual(await File.ReadAllTextAsync(Path.Combine(db.Folder, "data", "keys", "master.key")),
            await File.ReadAllTextAsync(Path.Combine(elsewhere, "keys", "master.key")));
        var unreadable = await world.AdminOf(second).GetAsync($"/api/v1/apps/{world.AppId}/webhook");
        Assert.Equal("secret_key_unavailable", unreadable.Error(ErrorCatalog.s_common_globalexception, 500).GetProperty("errCode").GetString());
        Assert.Contains("Atelier:Security", unreadable.Json.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(secret, unreadable.Text, StringComparison.Ordinal);
        Assert.Equal("image_url", (await second.Client.GetAsync(url)).Error(ErrorCatalog.b_session_tokenforbidden, 403).GetProperty("errCode").GetString());
        (await second.Client.GetAsync($"/api/v1/images/{imageId}/content?expires={tenYears}&sig={forgedSig}")).Error(ErrorCatalog.b_session_tokenforbidden, 403);

        // Each server's own URLs work where its key is, and only there: the store is shared, the key is not.
        var secondUrl = (await world.AppOf(second).GetAsync($"/api/v1/images/{imageId}")).Ok().GetProperty("url").GetString()!;
        using (var ok = await second.Client.Http.GetAsync(secondUrl))
        {
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        (await first.Client.GetAsync(secondUrl)).Error(ErrorCatalog.b_session_tokenforbidden, 403);

        // Rotating the secret is how an app recovers on the server that lost the key: the old secret is not carried over.
        var rotated = (await world.AdminOf(second).PostAsync($"/api/v1/apps/{world.AppId}/webhook/secret-rotations", new { overlapSeconds = 3600 })).Ok();
        Assert.StartsWith("whsec_", rotated.GetProperty("secret").GetString(), StringComparison.Ordinal);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, rotated.GetProperty("previousSecret").ValueKind);
    }

    [Fact]
    public async Task KeyFile_IsMadeAtFirstStart_OwnerOnly_AndKeptAcrossRestarts()
    {
        await using var db = await TestDatabase.CreateAsync();
        var path = Path.Combine(db.Folder, "data", "keys", "master.key");
        string url;
        await using (var host = await TestHost.StartAsync(Settings(), database: db))
        {
            Assert.True(File.Exists(path));
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
            }

            var world = await Scenario.NewTenantAsync(host);
            url = (await ImageAsync(host, world)).Url;
        }

        var key = await File.ReadAllTextAsync(path);
        await using var again = await TestHost.StartAsync(Settings(), database: db);
        Assert.Equal(key, await File.ReadAllTextAsync(path));
        using var ok = await again.Client.Http.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task ConfiguredKeyFile_MissingUnreadableOrMalformed_StopsTheStart()
    {
        await using var db = await TestDatabase.CreateAsync();
        var missing = Path.Combine(db.Folder, "no-such", "master.key");
        var error = await Assert.ThrowsAsync<InvalidConfigurationException>(() =>
            TestHost.StartAsync(Settings(("Atelier:Security:KeyFile", missing)), database: db));
        Assert.Contains(missing, error.Message, StringComparison.Ordinal);
        Assert.Contains("missing or unreadable", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(missing));

        var folder = Directory.CreateDirectory(Path.Combine(db.Folder, "a-folder")).FullName;
        error = await Assert.ThrowsAsync<InvalidConfigurationException>(() => TestHost.StartAsync(Settings(("Atelier:Security:KeyFile", folder)), database: db));
        Assert.Contains(folder, error.Message, StringComparison.Ordinal);

        var malformed = Path.Combine(db.Folder, "short.key");
        await File.WriteAllTextAsync(malformed, Convert.ToBase64String(new byte[16]));
        error = await Assert.ThrowsAsync<InvalidConfigurationException>(() => TestHost.StartAsync(Settings(("Atelier:Security:KeyFile", malformed)), database: db));
        Assert.Contains("32 random bytes", error.Message, StringComparison.Ordinal);

        // A configured key file that exists is used as it is (and not rewritten).
        var good = Path.Combine(db.Folder, "good.key");
        var key = NewKey();
        await File.WriteAllTextAsync(good, key + "\n");
        await using var host = await TestHost.StartAsync(Settings(("Atelier:Security:KeyFile", good)), database: db);
        Assert.Equal(key + "\n", await File.ReadAllTextAsync(good));
        Assert.False(File.Exists(Path.Combine(db.Folder, "data", "keys", "master.key")));
    }

    [Fact]
    public async Task Rotation_OldUrlsAndSecretsWorkDuringTheGrace_UrlsRefusedAfter()
    {
        await using var db = await TestDatabase.CreateAsync();
        var (oldKey, newKey) = (NewKey(), NewKey());
        const string threeDays = "259200";
        string url, imageId, secret;
        TenantWorld world;
        await using (var before = await TestHost.StartAsync(Settings(("Atelier:Security:MasterKey", oldKey), ("Atelier:Images:UrlLifetimeSeconds", threeDays)),
                         fakeClock: true, database: db))
        {
            world = await Scenario.NewTenantAsync(before);
            secret = (await world.AdminOf(before).GetAsync($"/api/v1/apps/{world.AppId}/webhook")).Ok().GetProperty("secret").GetString()!;
            (imageId, url) = await ImageAsync(before, world);
            var expiresAt = (await world.AppOf(before).GetAsync($"/api/v1/images/{imageId}")).Ok().GetProperty("urlExpiresAt").GetDateTime();
            Assert.Equal(before.Clock!.GetUtcNow().UtcDateTime.AddDays(3), expiresAt);
        }

        // The new key signs and seals; the old one verifies and opens for an hour more (the fake clocks start at the same instant).
        var graceEnds = new DateTimeOffset(2026, 11, 27, 9, 0, 0, TimeSpan.Zero);
        await using (var after = await TestHost.StartAsync(Settings(
                         ("Atelier:Security:MasterKey", newKey), ("Atelier:Security:PreviousKeys:0:Key", oldKey),
                         ("Atelier:Security:PreviousKeys:0:Until", graceEnds.ToString("O")), ("Atelier:Images:UrlLifetimeSeconds", threeDays)),
                         fakeClock: true, database: db))
        {
            Assert.True(after.Clock!.GetUtcNow() < graceEnds);
            using (var ok = await after.Client.Http.GetAsync(url))
            {
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            }

            Assert.Equal(secret, (await world.AdminOf(after).GetAsync($"/api/v1/apps/{world.AppId}/webhook")).Ok().GetProperty("secret").GetString());
            var fresh = (await world.AppOf(after).GetAsync($"/api/v1/images/{imageId}")).Ok().GetProperty("url").GetString()!;

            after.Clock.Advance(TimeSpan.FromHours(2));
            // Still within the URL's own three days, but its key's grace is over.
            (await after.Client.GetAsync(url)).Error(ErrorCatalog.b_session_tokenforbidden, 403);
            using var stillOk = await after.Client.Http.GetAsync(fresh);
            Assert.Equal(HttpStatusCode.OK, stillOk.StatusCode);
        }

        // The secret was sealed again under the new key at that start: a server with the new key alone reads it.
        await using var onlyNew = await TestHost.StartAsync(Settings(("Atelier:Security:MasterKey", newKey)), database: db);
        Assert.Equal(secret, (await world.AdminOf(onlyNew).GetAsync($"/api/v1/apps/{world.AppId}/webhook")).Ok().GetProperty("secret").GetString());
    }

    [Fact]
    public async Task ImageUrl_LivesAnHourByDefault_AWeekAtMost()
    {
        await using (var db = await TestDatabase.CreateAsync())
        {
            var invalid = await Assert.ThrowsAsync<InvalidConfigurationException>(() =>
                TestHost.StartAsync(Settings(("Atelier:Images:UrlLifetimeSeconds", (8 * 86400).ToString(System.Globalization.CultureInfo.InvariantCulture))), database: db));
            Assert.Contains("Atelier:Images:UrlLifetimeSeconds", Assert.Single(invalid.Problems), StringComparison.Ordinal);
        }

        await using var host = await TestHost.StartAsync(Settings(), fakeClock: true);
        var world = await Scenario.NewTenantAsync(host);
        var (imageId, url) = await ImageAsync(host, world);
        var expiresAt = (await world.AppOf(host).GetAsync($"/api/v1/images/{imageId}")).Ok().GetProperty("urlExpiresAt").GetDateTime();
        Assert.Equal(host.Clock!.GetUtcNow().UtcDateTime.AddHours(1), expiresAt);
        host.Clock.Advance(TimeSpan.FromMinutes(61));
        (await host.Client.GetAsync(url)).Error(ErrorCatalog.b_session_tokenforbidden, 403);
    }
}
