using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Agents;

/// <summary>
/// A change of a pool's used capacity holds <c>pool:{poolId}</c> (docs/replicas.md): held from outside, as another
/// replica or an operator would, a unit's creation (and a change of its replicas) answers 503 <c>s_common_lockfail</c>
/// with <c>Retry-After</c>, writes nothing, and goes through once the lock is free. On both databases.
/// </summary>
public class UnitLockTests
{
    private static readonly Dictionary<string, string> Settings = new()
    {
        ["Atelier:Coordination:LockWaitSeconds"] = "1",
        ["Atelier:Coordination:LockRetryAfterSeconds"] = "3",
    };

    [Fact]
    public async Task CreateUnit_PoolLockHeldOutside_Answers503LockFailWithRetryAfter_WritesNothing_ThenCreatesOnceReleased()
    {
        await using var host = await TestHost.StartAsync(Settings);
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var platform = host.Admin();
        var pool = (await platform.PostAsync("/api/v1/platform/computing-pools", new
        {
            name = "locked-" + Guid.NewGuid().ToString("N")[..8], tenantIds = new[] { world.TenantId },
            regions = new[] { new { region = "local", instanceTypes = new[] { new { name = "cpu", capacity = 2, slotsPerReplica = 1 } } } },
        })).Created().GetProperty("id").GetString()!;
        var template = (await admin.PostAsync("/api/v1/scale-templates", new { name = "still", minReplicas = 0, maxReplicas = 2 }))
            .Created().GetProperty("id").GetString()!;
        var agent = (await admin.PostAsync("/api/v1/agents", new { name = "lockers" })).Created().GetProperty("id").GetString()!;
        var version = (await admin.PostAsync($"/api/v1/agents/{agent}/versions", new { versionName = "v1", image = "atelier/atelier:test", engine = "noop=10", autoScaleTemplateId = template }))
            .Created().GetProperty("id").GetString()!;
        var units = $"/api/v1/agents/{agent}/units";
        // Zero replicas, by hand: the autoscaler starts no worker for it.
        var unit = new { agentVersionId = version, computingPoolId = pool, region = "local", instanceType = "cpu", replicas = 0, autoscale = false };

        async Task AssertNothingWrittenAsync()
        {
            Assert.Equal(0, (await admin.GetAsync(units)).Ok().GetProperty("total").GetInt32());
            Assert.Equal(0, (await platform.GetAsync("/api/v1/platform/agent-functions?pageSize=100")).Ok().GetProperty("total").GetInt32());
            var keys = (await platform.GetAsync("/api/v1/platform/worker-keys")).Ok();
            Assert.DoesNotContain(keys.EnumerateArray(), k => k.TryGetProperty("name", out var n) && n.GetString()?.StartsWith("unit ", StringComparison.Ordinal) == true);
        }

        await using (await OutsideLock.TakeAsync(host.Database, $"pool:{pool}"))
        {
            var refused = await admin.PostAsync(units, unit);
            var error = refused.Error(ErrorCatalog.s_common_lockfail, 503);
            Assert.Equal(ErrCodes.LockBusy, error.GetProperty("errCode").GetString());
            Assert.Equal("3", refused.Headers["Retry-After"]);
            await AssertNothingWrittenAsync();
        }

        var created = (await admin.PostAsync(units, unit)).Created();
        var id = created.GetProperty("id").GetString()!;
        Assert.Equal(0, created.GetProperty("replicas").GetInt32());
        var listed = (await admin.GetAsync(units)).Ok();
        Assert.Equal(1, listed.GetProperty("total").GetInt32());
        Assert.Equal(id, listed.GetProperty("items")[0].GetProperty("id").GetString());
        Assert.Equal(JsonValueKind.Object, created.GetProperty("function").ValueKind);

        // A change of its replicas takes the same lock: refused while it is held, the replicas left as they were.
        await using (await OutsideLock.TakeAsync(host.Database, $"pool:{pool}"))
        {
            var refused = await admin.PutAsync($"{units}/{id}", new { replicas = 1 });
            Assert.Equal(ErrCodes.LockBusy, refused.Error(ErrorCatalog.s_common_lockfail, 503).GetProperty("errCode").GetString());
            Assert.Equal("3", refused.Headers["Retry-After"]);
            Assert.Equal(0, (await admin.GetAsync($"{units}/{id}")).Ok().GetProperty("replicas").GetInt32());
        }

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"{units}/{id}")).Status);
    }
}
