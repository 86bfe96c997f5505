using System.Security.Cryptography;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Core.Models;
using Atelier.Core.Security;
using Atelier.Core.Tenancy;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Platform;

/// <summary>What a bare <c>atelier serve</c> sets up so that one curl gives an image: the demo model, the demo tenant and the local worker's key.</summary>
public sealed class EmbeddedSetup(AtelierDb db, IObjectStore store, BuiltinModels builtins, TimeProvider clock, RequestContext ctx,
    TenancyService tenancy, IdentityService identity, TokenService tokens)
{
    /// <summary>The demo model's name in the registry (the engine's demo model folder has the same name).</summary>
    public const string DemoModelName = "atelier-demo";

    /// <summary>Stores the demo pipeline's UNet (written by the engine into <paramref name="folder"/>) as a public blob, so tenants can get it without a download.</summary>
    public async Task RegisterDemoModelAsync(string folder, CancellationToken ct)
    {
        var bytes = await File.ReadAllBytesAsync(Path.Combine(folder, "unet", "model.onnx"), ct);
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (await store.SizeAsync(ObjectStores.BlobKey(sha), ct) != bytes.Length)
        {
            using var content = new MemoryStream(bytes);
            await store.PutAsync(ObjectStores.BlobKey(sha), content, bytes.Length, ct);
        }

        await BlobRegistry.RegisterAsync(db, new BlobFacts(sha, bytes.Length, "onnx", "onnx", sha[..10], null, null, []), BlobRegistry.PublicOwner, clock, ct);
        builtins.Add(new BuiltinModelFile(DemoModelName, "model.onnx", sha, bytes.Length, "onnx"));
    }

    /// <summary>Creates the demo tenant once (account <c>demo</c>); returns its new API token, or null when it existed already.</summary>
    public async Task<string?> EnsureDemoTenantAsync(CancellationToken ct)
    {
        if (await db.Accounts.AnyAsync(a => a.Uid == "demo", ct))
        {
            return null;
        }

        ctx.Caller = new Caller(CallerKind.PlatformAdmin, "embedded-setup", null, null, []);
        ctx.OperatorId = "atelier-setup";
        await tenancy.CreateAccountAsync(new CreateAccountRequest("demo", "Demo"), ct);
        var tenant = await tenancy.CreateTenantAsync(new CreateTenantRequest("demo", "Demo"), ct);
        ctx.TenantId = tenant.Id;
        db.TenantScope = tenant.Id;
        await tenancy.InitAsync(tenant.Id, ct);
        await tenancy.ActivateAsync(tenant.Id, ct);
        var app = await identity.CreateAppAsync(new CreateAppRequest("demo", "Made by the first start of atelier serve"), ct);
        var issued = await tokens.IssueAsync(app.Id, new IssueTokenRequest("demo", [TokenScope.Admin, TokenScope.App], null), ct);
        var version = await db.ModelVersions.Where(v => db.Models.Any(m => m.Id == v.ModelId && m.Name == DemoModelName)).Select(v => v.Id).FirstOrDefaultAsync(ct);
        if (version is not null)
        {
            await db.ApiTokens.Where(t => t.Id == issued.Token.Id).ExecuteUpdateAsync(u => u.SetProperty(t => t.CheckpointVersionId, version), ct);
        }

        return issued.Secret;
    }

    /// <summary>
    /// Replaces the local worker's key with a fresh one (its secret lives only in the child's environment). The key id
    /// is this replica's own (its machine and data folder), so replicas sharing a database never replace each other's.
    /// </summary>
    public async Task<string> IssueLocalWorkerKeyAsync(string dataDirectory, CancellationToken ct)
    {
        var id = LocalWorkerKeyId(dataDirectory);
        await db.PlatformKeys.Where(k => k.Id == id).ExecuteDeleteAsync(ct);
        var secret = Secrets.Issue(Secrets.WorkerKeyPrefix);
        db.PlatformKeys.Add(new PlatformKey
        {
            Id = id, Name = "local worker", Scope = "worker", SecretHash = Secrets.Hash(secret), DisplayPrefix = Secrets.DisplayPrefix(secret),
            CreatedAt = clock.GetUtcNow().UtcDateTime,
        });
        await db.SaveChangesAsync(ct);
        return secret;
    }

    /// <summary>The id of this replica's local worker key.</summary>
    public static string LocalWorkerKeyId(string dataDirectory) => $"wk_local_{LocalSuffix(dataDirectory)}";

    /// <summary>Whether the local worker's key is still there and not revoked.</summary>
    public Task<bool> LocalWorkerKeyValidAsync(string keyId, CancellationToken ct) =>
        db.PlatformKeys.AnyAsync(k => k.Id == keyId && k.RevokedAt == null, ct);

    /// <summary>This replica's own suffix for the local worker's key and worker ids: a hash of its machine name and data folder.</summary>
    public static string LocalSuffix(string dataDirectory) =>
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{Environment.MachineName}\n{Path.GetFullPath(dataDirectory)}")))[..10];
}
