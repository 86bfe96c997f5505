using Atelier.Server.Tests.Infrastructure;
using CsCheck;

namespace Atelier.Server.Tests.Security;

/// <summary>
/// Generated malformed requests, at least 1,000 per route family: every answer is a 4xx in the envelope with a
/// catalog code, never a 5xx, never a stack trace, and nothing is created.
/// </summary>
public class MalformedInputTests(SharedHost shared) : IClassFixture<SharedHost>
{
    private const int PerFamily = 1000;
    private TestHost Host => shared.Host;

    /// <summary>Values that no field of ours accepts as a name or an id.</summary>
    private static readonly Gen<string> BadScalar = Gen.OneOf(
        Gen.Const("null"), Gen.Const("\"\""), Gen.Const("\"   \""), Gen.Const("true"), Gen.Const("[]"), Gen.Const("{}"),
        Gen.Int.Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        Gen.Double.Select(d => double.IsFinite(d) ? d.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "1e999"),
        Gen.Int[129, 5000].Select(n => "\"" + new string('x', n) + "\""),
        Gen.Char['\u0001', '\u001f'].Select(c => "\"a\\u" + ((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture) + "b\""),
        Gen.Const("99999999999999999999999999999"));

    /// <summary>Bodies broken as text: truncated, junk, wrong root, deep nesting, bad encodings.</summary>
    private static readonly Gen<string> BrokenText = Gen.OneOf(
        Gen.String.Where(s => !s.TrimStart().StartsWith('{')),
        Gen.Const("{"), Gen.Const("{\"name\":"), Gen.Const("{\"name\":\"x\""), Gen.Const("{'name':'x'}"), Gen.Const("{name: x}"),
        Gen.Int[40, 200].Select(n => new string('[', n) + new string(']', n)),
        Gen.Int[40, 200].Select(n => string.Concat(Enumerable.Repeat("{\"a\":", n)) + "1" + new string('}', n)),
        Gen.Const("{\"name\":\"\\ud800\",\"displayName\":\"\\ud800\"}"),
        Gen.Const("{\"name\":\"x\"}garbage"));

    /// <summary>An object whose named fields all hold bad values, or a body broken as text.</summary>
    private static Gen<string> BadBody(params string[] fields) => Gen.Frequency(
        (3, BadScalar.Array[fields.Length].Select(values =>
            "{" + string.Join(",", fields.Select((f, i) => $"\"{f}\":{values[i]}")) + "}")),
        (1, BrokenText));

    private async Task RunFamily(Func<TenantWorld, ApiClient> client, string method, string path, Gen<string> bodies, Func<TenantWorld, string>? pathOf = null)
    {
        var world = await Scenario.NewTenantAsync(Host);
        var c = client(world);
        var target = pathOf?.Invoke(world) ?? path;
        var count = 0;
        await bodies.SampleAsync(async body =>
        {
            var r = await c.SendAsync(new HttpMethod(method), target, body);
            Interlocked.Increment(ref count);
            r.AssertClientErrorEnvelope();
        }, iter: PerFamily, threads: 4, seed: null, print: b => b.Length > 200 ? b[..200] + "…" : b);
        Assert.True(count >= PerFamily, $"sent {count}");
    }

    [Fact]
    public Task Accounts_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(_ => Host.Admin(), "POST", "/api/v1/accounts", BadBody("uid", "name"));

    [Fact]
    public Task Tenants_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(_ => Host.Admin(), "POST", "/api/v1/tenants", BadBody("accountUid", "name"));

    [Fact]
    public async Task Apps_MalformedBodies_Answer4xxEnvelopeAndCreateNothing()
    {
        await RunFamily(w => w.AdminOf(Host), "POST", "/api/v1/apps", BadBody("name", "description"));
        // Only the scenario's own app exists in each tenant the family used.
        var world = await Scenario.NewTenantAsync(Host);
        Assert.Equal(1, (await world.AdminOf(Host).GetAsync("/api/v1/apps")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public Task Roles_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(w => w.AdminOf(Host), "POST", "/api/v1/roles", BadBody("name"));

    [Fact]
    public Task Operators_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(w => w.AdminOf(Host), "POST", "/api/v1/operators", BadBody("id", "name"));

    [Fact]
    public Task Tokens_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(w => w.AdminOf(Host), "POST", "", Gen.Frequency(
                (3, Gen.OneOf(BadScalar.Where(v => v is not "null" and not "[]"), Gen.Const("[\"root\"]"), Gen.Const("[7]"), Gen.Const("\"admin\""))
                    .Select(s => "{\"scopes\":" + s + "}")),
                (1, Gen.OneOf(Gen.Const("\"yesterday\""), Gen.Const("\"2001-01-01T00:00:00Z\""), Gen.Const("17"))
                    .Select(s => "{\"expiresAt\":" + s + "}")),
                (1, BrokenText)),
            w => $"/api/v1/apps/{w.AppId}/tokens");

    [Fact]
    public Task TenantConfig_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(w => w.AdminOf(Host), "PUT", "/api/v1/tenant/config", Gen.Frequency(
            (3, Gen.OneOf(Gen.Const("maxConcurrentJobs"), Gen.Const("imageRetentionDays"), Gen.Const("defaultSessionSeconds"))
                .SelectMany(f => Gen.OneOf(Gen.Int[int.MinValue, 0], Gen.Int[4_000_000, int.MaxValue], Gen.Const(int.MinValue))
                    .Select(v => "{\"" + f + "\":" + v + "}"))),
            (2, BadScalar.Where(v => v != "null").Select(v => "{\"defaultRole\":" + v + "}")),
            (1, BrokenText)));

    [Fact]
    public Task FunctionSettings_MalformedDocuments_Answer4xxEnvelope()
    {
        static Gen<string> Field(string name, Gen<string> values) => values.Select(v => "{\"" + name + "\":" + v + "}");
        var notANumber = Gen.OneOf(Gen.Const("\"60\""), Gen.Const("null"), Gen.Const("true"), Gen.Const("[]"), Gen.Const("1.5"));
        return RunFamily(w => w.AdminOf(Host), "PUT", "/api/v1/tenant/function-settings", Gen.Frequency(
            (2, Field("defaultEngine", BadScalar)),
            (2, Field("timeoutSeconds", Gen.OneOf(Gen.Int[int.MinValue, 0].Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                Gen.Int[86401, int.MaxValue].Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), notANumber))),
            (1, Field("allowedModelTypes", Gen.OneOf(Gen.Const("[\"bogus\"]"), Gen.Const("[1]"), Gen.Const("\"lora\""), Gen.Const("[\"lora\",\"lora\"]"), Gen.Const("{}"), Gen.Const("null")))),
            (1, Field("environment", Gen.OneOf(Gen.Const("[]"), Gen.Const("\"x\""), Gen.Const("{\"A\":1}"), Gen.Const("null"), Gen.Const("true")))),
            (1, Field("nsfwFilter", Gen.OneOf(Gen.Const("\"yes\""), Gen.Const("1"), Gen.Const("null"), Gen.Const("[]")))),
            (2, Gen.String[1, 20].Select(f => "x" + new string([.. f.Where(char.IsAsciiLetterOrDigit)])).SelectMany(f => Field(f, BadScalar))),
            (1, BrokenText)));
    }

    [Fact]
    public Task Sessions_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(w => w.AppOf(Host), "POST", "/api/v1/sessions", Gen.Frequency(
            (3, BadBody("endUserId", "role")),
            (1, Gen.OneOf(Gen.Const("\"yesterday\""), Gen.Const("\"2001-01-01T00:00:00Z\""), Gen.Const("0"), Gen.Const("\"9999-99-99\""))
                .Select(v => "{\"endUserId\":\"u\",\"expiredAt\":" + v + "}")),
            (1, Gen.OneOf(Gen.Const("\"exclusive\""), Gen.Const("\"1\""), Gen.Const("2"), Gen.Const("[]"))
                .Select(v => "{\"endUserId\":\"u\",\"mode\":" + v + "}"))));

    [Fact]
    public Task Models_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(w => w.AdminOf(Host), "POST", "/api/v1/models", BadBody("name", "type"));

    [Fact]
    public Task Uploads_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(w => w.AdminOf(Host), "POST", "/api/v1/uploads", Gen.Frequency(
            (2, BadBody("type", "fileName", "size")),
            (1, Gen.OneOf(Gen.Long[long.MinValue, 0], Gen.Long[70L * 1024 * 1024 * 1024, long.MaxValue])
                .Select(n => "{\"type\":\"lora\",\"fileName\":\"a.safetensors\",\"size\":" + n + "}")),
            (1, BadScalar.Where(v => v != "null").Select(v => "{\"type\":\"lora\",\"fileName\":\"a.safetensors\",\"size\":5,\"sha256\":" + v + "}"))));

    [Fact]
    public Task Jobs_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(w => w.AppOf(Host), "POST", "/api/v1/agents/default/jobs", Gen.Frequency(
            (2, BadScalar.Where(v => v != "null").Select(v => "{\"jobId\":" + v + ",\"input\":{}}")),
            (1, BadScalar.Where(v => v is not "{}").Select(v => "{\"input\":" + v + "}")),
            (1, BrokenText),
            (1, Gen.OneOf(Gen.Int[101, int.MaxValue], Gen.Int[int.MinValue, -101]).Select(p => "{\"input\":{},\"priority\":" + p + "}"))));

    [Fact]
    public Task AppWebhook_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(w => w.AdminOf(Host), "PUT", "", Gen.Frequency(
            (2, BadScalar.Where(v => v is not ("null" or "\"\"")).Select(v => "{\"url\":" + v + "}")),
            (1, Gen.OneOf(BadScalar.Where(v => v is not ("null" or "[]")), Gen.Const("[\"exploded\"]"), Gen.Const("[1]"))
                .Select(v => "{\"url\":\"https://example.com/hook\",\"events\":" + v + "}")),
            (1, Gen.OneOf(Gen.Const("ftp://example.com/h"), Gen.Const("http://10.0.0.1/h"), Gen.Const("http://[::1]/h"), Gen.Const("https://u:p@example.com/h"))
                .Select(u => "{\"url\":\"" + u + "\"}")),
            (1, BrokenText.Where(b => !b.Contains("displayName", StringComparison.Ordinal)))), w => $"/api/v1/apps/{w.AppId}/webhook"); // (unknown fields alone: a valid removal)

    [Fact]
    public Task JobWebhooks_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(w => w.AppOf(Host), "POST", "/api/v1/agents/default/jobs", Gen.Frequency(
            (2, BadScalar.Where(v => v is not ("null" or "\"\"")).Select(v => "{\"input\":{},\"webhook\":" + v + "}")),
            (1, Gen.OneOf(BadScalar.Where(v => v is not ("null" or "[]")), Gen.Const("[\"exploded\"]"))
                .Select(v => "{\"input\":{},\"webhook\":\"https://example.com/hook\",\"webhookEvents\":" + v + "}")),
            (1, Gen.Const("{\"input\":{},\"webhookEvents\":[\"completed\"]}"))));

    /// <summary>A1111 bodies with one field out of its type or range: refused before anything is queued.</summary>
    [Fact]
    public async Task Predict_MalformedA1111Bodies_Answer4xxEnvelope_AndQueueNothing()
    {
        static string I(long n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var notNumber = Gen.OneOf(Gen.Const("\"20\""), Gen.Const("true"), Gen.Const("[]"), Gen.Const("{}"));
        var field = Gen.OneOf(
            Gen.OneOf(Gen.Int[151, int.MaxValue].Select(n => I(n)), Gen.Int[int.MinValue, 0].Select(n => I(n)), Gen.Const("1.5"), notNumber).Select(v => ("steps", v)),
            Gen.OneOf(Gen.Int[2049, int.MaxValue].Select(n => I(n)), Gen.Int[int.MinValue, 63].Select(n => I(n)), Gen.Int[9, 255].Select(n => I((n * 8) + 3)), notNumber).Select(v => ("width", v)),
            Gen.OneOf(Gen.Int[9, 1000].Select(n => I(n)), Gen.Int[int.MinValue, 0].Select(n => I(n)), notNumber).Select(v => ("batch_size", v)),
            Gen.OneOf(Gen.Double[30.001, 1e9].Select(d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture)), Gen.Const("-1"), notNumber).Select(v => ("cfg_scale", v)),
            Gen.OneOf(Gen.Int.Select(n => I(n)), Gen.Const("true"), Gen.Const("[\"a\"]"), Gen.Const("{}"), Gen.Const("\"" + new string('p', 20_001) + "\"")).Select(v => ("prompt", v)),
            Gen.OneOf(Gen.Const("5"), Gen.Const("\"x\""), Gen.Const("[]"), Gen.Const("true"), Gen.Int[0, int.MaxValue].Select(x => $"{{\"sd_model_checkpoint\":\"ghost-{x}\"}}")).Select(v => ("override_settings", v)),
            Gen.OneOf(Gen.Long[long.MinValue, -2].Select(n => I(n)), Gen.Const("\"1\""), Gen.Const("1.5")).Select(v => ("seed", v)));
        var world = await Scenario.NewTenantAsync(Host);
        var count = 0;
        await Gen.Frequency((4, field.Select(f => $"{{\"{f.Item1}\":{f.Item2}}}")), (1, BrokenText)).SampleAsync(async body =>
        {
            var r = await world.AppOf(Host).SendAsync(HttpMethod.Post, "/api/v1/predict/txt2img", body);
            Interlocked.Increment(ref count);
            r.AssertClientErrorEnvelope();
        }, iter: PerFamily, threads: 4, seed: null, print: b => b.Length > 200 ? b[..200] + "…" : b);
        Assert.True(count >= PerFamily);
        Assert.Equal(0, (await world.AppOf(Host).GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public Task SessionCheck_MalformedBodies_Answer4xxEnvelope() =>
        RunFamily(_ => Host.Client, "POST", "/api/v1/sessions/check", BadBody("credential", "mode"));

    [Fact]
    public async Task Headers_Junk_Answer4xxEnvelope()
    {
        var gen = Gen.OneOf(Gen.String[0, 300], Gen.Const("Bearer"), Gen.Const("Basic abc"), Gen.Const("Bearer atk_"),
            Gen.String.Select(s => "Bearer " + s));
        var count = 0;
        await gen.SampleAsync(async header =>
        {
            var clean = new string([.. header.Where(c => c is >= ' ' and < '\u007f')]);
            var r = await Host.Client.WithHeader("Authorization", clean).WithHeader("X-Tenant-Id", clean).GetAsync("/api/v1/apps");
            Interlocked.Increment(ref count);
            r.AssertClientErrorEnvelope();
        }, iter: PerFamily, threads: 4);
        Assert.True(count >= PerFamily);
    }

    [Fact]
    public void BadBody_NeverGeneratesAValidName()
    {
        // The generator is the test's premise: it must not produce a body the API would accept.
        BadBody("name").Sample(body => Assert.DoesNotMatch("^\\{\"name\":\" *[A-Za-z0-9][A-Za-z0-9 ]{0,63}\"\\}$", body), iter: 2000);
    }
}
