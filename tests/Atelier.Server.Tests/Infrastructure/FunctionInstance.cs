using System.Text.Json;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>The test instance program (tests/Atelier.Runtime.TestInstance) as a function: its open-function body, and reading its answers.</summary>
public static class FunctionInstance
{
    private static readonly Lazy<string> Dll = new(Locate);

    public static string DllPath => Dll.Value;

    public static string Dotnet =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    /// <summary>An open-function request running the test instance with <paramref name="environment"/> (TEST_GREETING, TEST_EXIT_AT_START, …).</summary>
    public static Dictionary<string, object?> Open(string name, IReadOnlyDictionary<string, string>? environment = null, int concurrency = 1, int timeoutSeconds = 60,
        int? idleSeconds = null) => new()
    {
        ["name"] = name, ["command"] = Dotnet, ["args"] = new[] { DllPath }, ["healthPath"] = "/health", ["instanceConcurrency"] = concurrency,
        ["timeoutSeconds"] = timeoutSeconds, ["idleSeconds"] = idleSeconds, ["environment"] = environment ?? new Dictionary<string, string>(),
    };

    /// <summary>GET <paramref name="path"/> through the router; the instance answers <c>{greeting, instance, pid}</c>.</summary>
    public static async Task<(System.Net.HttpStatusCode Status, JsonElement Body, string Text)> GetAsync(HttpClient http, string path, string? bearer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (bearer is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
        }

        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var body = text.StartsWith('{') ? JsonDocument.Parse(text).RootElement.Clone() : default;
        return (response.StatusCode, body, text);
    }

    private static string Locate()
    {
        var output = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
        var configuration = output.Parent!.Name;
        var root = output;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Atelier.slnx")))
        {
            root = root.Parent;
        }

        var dll = Path.Combine(root?.FullName ?? ".", "tests", "Atelier.Runtime.TestInstance", "bin", configuration, "net10.0", "Atelier.Runtime.TestInstance.dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"The test instance is not built: {dll} is missing.");
    }
}
