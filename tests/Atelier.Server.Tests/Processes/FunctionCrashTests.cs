using System.Net;
using Atelier.Core.Security;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Processes;

/// <summary>A server killed with SIGKILL leaves no function instance behind, and the next start brings its functions back.</summary>
public class FunctionCrashTests
{
    [Fact]
    public async Task ServerKilled_InstancesDoNotOutliveIt_AndARestartReconciles()
    {
        await using var db = await TestDatabase.CreateAsync();
        var port = AtelierProcess.FreePort();
        var adminKey = Secrets.Issue(Secrets.PlatformKeyPrefix);
        var baseUri = new Uri($"http://127.0.0.1:{port}");
        string[] args =
        [
            "serve", $"--Atelier:Server:Urls={baseUri}", $"--Atelier:Server:DataDirectory={Path.Combine(db.Folder, "data")}",
            $"--Atelier:Database:Provider={db.Provider}", $"--Atelier:Database:ConnectionString={db.ConnectionString}",
            $"--Atelier:Auth:BootstrapAdminKey={adminKey}", "--Atelier:Embedded:DemoTenant=false", "--Atelier:Embedded:LocalWorker=false",
            "--Atelier:Functions:LocalStopGraceSeconds=2", "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Information",
        ];
        var server = AtelierProcess.Start(db.Folder, args);
        try
        {
            await server.WaitForOutputAsync("Now listening on", TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(60) };
            var api = new ApiClient(http);
            var world = await Scenario.NewTenantAsync(api.With(adminKey, "op-crash"));
            var admin = api.With(world.AdminToken, "op-tenant");
            (await admin.PostAsync("/api/v1/services", new { name = "s" })).Created();
            (await admin.PostAsync("/api/v1/services/s/functions", FunctionInstance.Open("f"))).Created();
            var first = await FunctionInstance.GetAsync(http, "/fn/s/f/", world.AppToken);
            Assert.Equal(HttpStatusCode.OK, first.Status);
            var pid = first.Body.GetProperty("pid").GetInt32();

            await server.KillAloneAsync();
            await Eventually.UntilAsync(() => Task.FromResult(!ProcessState.IsRunning(pid)), "the instance stopped after its server died", TimeSpan.FromSeconds(60));

            await server.DisposeAsync();
            server = AtelierProcess.Start(db.Folder, args);
            await server.WaitForOutputAsync("Now listening on", TimeSpan.FromSeconds(60));
            var again = await Eventually.ValueAsync(() => FunctionInstance.GetAsync(http, "/fn/s/f/", world.AppToken), r => r.Status == HttpStatusCode.OK,
                "the restarted server serves the function again");
            Assert.NotEqual(pid, again.Body.GetProperty("pid").GetInt32());
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
