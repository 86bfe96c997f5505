// A function instance for the runtime tests. It listens on 127.0.0.1:$PORT and behaves as its environment says:
//   TEST_EXIT_AT_START=<code>  exits at once with that code (an instance that dies at start)
//   TEST_NEVER_HEALTHY=1       answers 503 on /health forever
//   TEST_START_DELAY_MS=<ms>   waits before it listens (a slow cold start)
//   TEST_GREETING=<text>       what GET / answers (tells versions apart)
//   TEST_HTML=1                GET / answers an HTML page naming the X-Atelier-Session-Id it was sent (a studio UI)
//   TEST_ROOT_STATUS=<code>    GET / answers that status (an instance whose page fails)
// Routes: GET /health; GET / (greeting, instance id, pid); GET /slow?ms= (holds the request, counts it in flight);
// GET /inflight (the most requests it held at once); POST /echo (the body back); GET /env/{name}; GET /crash (exits 137).
using System.Diagnostics;

var exitCode = Environment.GetEnvironmentVariable("TEST_EXIT_AT_START");
if (int.TryParse(exitCode, out var code))
{
    Console.Error.WriteLine($"exiting at start with {code}");
    return code;
}

if (int.TryParse(Environment.GetEnvironmentVariable("TEST_START_DELAY_MS"), out var delay))
{
    Thread.Sleep(delay);
}

var port = Environment.GetEnvironmentVariable("PORT") ?? "8080";
var builder = WebApplication.CreateSlimBuilder(args);
builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
builder.Logging.ClearProviders();
var app = builder.Build();
var never = Environment.GetEnvironmentVariable("TEST_NEVER_HEALTHY") == "1";
var greeting = Environment.GetEnvironmentVariable("TEST_GREETING") ?? "hello";
var id = Environment.GetEnvironmentVariable("ATELIER_INSTANCE_ID") ?? "";
var inFlight = 0;
var most = 0;
var gate = new object();

app.MapGet("/health", () => never ? Results.StatusCode(503) : Results.Ok("ok"));
var html = Environment.GetEnvironmentVariable("TEST_HTML") == "1";
var rootStatus = int.TryParse(Environment.GetEnvironmentVariable("TEST_ROOT_STATUS"), out var status) ? status : 200;
app.MapGet("/", (HttpRequest request) => rootStatus != 200 ? Results.Content("<html><body>broken</body></html>", "text/html", statusCode: rootStatus)
    : html ? Results.Content($"<!doctype html><html><head><title>{greeting}</title><link rel=\"stylesheet\" href=\"ui.css\"></head><body><h1 id=\"greeting\">{greeting}</h1>"
                      + $"<p id=\"session\">{System.Net.WebUtility.HtmlEncode(request.Headers["X-Atelier-Session-Id"].ToString())}</p></body></html>", "text/html; charset=utf-8")
    : Results.Json(new { greeting, instance = id, pid = Environment.ProcessId }));
app.MapGet("/ui.css", () => Results.Text("h1 { color: #3d5afe; }", "text/css"));
app.MapGet("/slow", async (int? ms, CancellationToken ct) =>
{
    lock (gate)
    {
        inFlight++;
        most = Math.Max(most, inFlight);
    }

    try
    {
        await Task.Delay(ms ?? 200, ct);
        return Results.Json(new { greeting, instance = id, pid = Environment.ProcessId });
    }
    finally
    {
        lock (gate)
        {
            inFlight--;
        }
    }
});
app.MapGet("/inflight", () =>
{
    lock (gate)
    {
        return Results.Json(new { now = inFlight, most });
    }
});
app.MapPost("/echo", async (HttpRequest request) =>
{
    using var reader = new StreamReader(request.Body);
    return Results.Text(await reader.ReadToEndAsync(), request.ContentType ?? "text/plain");
});
app.MapGet("/headers", (HttpRequest request) => Results.Json(request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase)));
app.MapGet("/env/{name}", (string name) => Results.Text(Environment.GetEnvironmentVariable(name) ?? ""));
app.MapGet("/crash", () =>
{
    Console.Error.WriteLine("crashing on request");
    Process.GetCurrentProcess().Kill();
    return Results.Ok();
});
Console.WriteLine($"listening on {port}");
app.Run();
return 0;
