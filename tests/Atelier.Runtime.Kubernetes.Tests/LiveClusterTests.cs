using Microsoft.Extensions.Logging.Abstractions;

namespace Atelier.Runtime.Kubernetes.Tests;

/// <summary>
/// The backend against a real cluster with Knative Serving, when <c>ATELIER_TEST_KUBECONFIG</c> names a kube config file
/// (namespace: <c>ATELIER_TEST_NAMESPACE</c>, default <c>default</c>). scripts/test.sh leaves the Live category out when the
/// variable is empty; run directly without it, the test is reported as skipped (not run), never as passed.
/// </summary>
[Trait("Category", "Live")]
public sealed class LiveClusterTests
{
    [Fact]
    public async Task ApplyAsync_HelloWorld_BecomesReadyAnswersAndDeletes()
    {
        var path = Environment.GetEnvironmentVariable("ATELIER_TEST_KUBECONFIG");
        if (string.IsNullOrEmpty(path))
        {
            Assert.Skip("ATELIER_TEST_KUBECONFIG is not set");
        }

        var ns = Environment.GetEnvironmentVariable("ATELIER_TEST_NAMESPACE") is { Length: > 0 } given ? given : "default";
        var region = new RuntimeRegion("live", "kubernetes", await File.ReadAllTextAsync(path), ns);
        using var backend = new KubernetesBackend(TimeProvider.System, NullLogger<KubernetesBackend>.Instance,
            new KubernetesBackendOptions { ReadyTimeout = TimeSpan.FromMinutes(5) });
        var key = new FunctionKey("fn-live-" + Guid.NewGuid().ToString("N")[..8]);
        var spec = new FunctionSpec
        {
            Key = key,
            Revisions =
            [
                new RevisionSpec
                {
                    Name = "latest",
                    Image = "ghcr.io/knative/helloworld-go:latest",
                    Port = 8080,
                    Environment = new Dictionary<string, string> { ["TARGET"] = "Atelier" },
                },
            ],
        };

        try
        {
            await backend.ApplyAsync(region, spec, CancellationToken.None);
            Assert.Equal(FunctionPhase.Ready, (await backend.ObserveAsync(region, key, CancellationToken.None)).Phase);

            using var lease = await backend.AcquireAsync(region, key, "latest", TimeSpan.FromSeconds(30), CancellationToken.None);
            using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
            var body = await http.GetStringAsync(lease.Destination);
            Assert.Contains("Hello Atelier", body, StringComparison.Ordinal);
        }
        finally
        {
            await backend.DeleteAsync(region, key, CancellationToken.None);
        }

        Assert.Equal(FunctionPhase.Absent, (await backend.ObserveAsync(region, key, CancellationToken.None)).Phase);
    }
}
