using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Atelier.Data;

/// <summary>
/// The one EF Core model. Provider subclasses (<see cref="Sqlite.SqliteAtelierDb"/>,
/// <see cref="Postgres.PostgresAtelierDb"/>) only carry their own migrations.
/// </summary>
public abstract class AtelierDb(DbContextOptions options) : DbContext(options)
{
    /// <summary>
    /// The tenant this unit of work acts for. Tenant-owned rows of other tenants are invisible to queries,
    /// and writing one throws. Null (system work before a tenant is known) sees no tenant-owned rows at all.
    /// </summary>
    public string? TenantScope { get; set; }

    /// <summary>SQLite's connections for hot reads (<see cref="RawCommands.ReadAsync{T}"/>); null on PostgreSQL.</summary>
    public Sqlite.SqliteReads? Reads { get; internal set; }

    /// <summary>
    /// SQLite's one writer of the file (<see cref="Sqlite.SqliteWriter"/>): the hot state changes run on it when no
    /// transaction of this context is open. Null on PostgreSQL and for an in-memory SQLite database.
    /// </summary>
    public Sqlite.SqliteWriter? Writes { get; internal set; }

    /// <summary>
    /// <see cref="Writes"/> when a write may go to it now: outside any transaction of this context (a write inside one
    /// belongs to that transaction, on the context's connection).
    /// </summary>
    public Sqlite.SqliteWriter? WriterNow => Database.CurrentTransaction is null ? Writes : null;

    public DbSet<Account> Accounts => Set<Account>();
    public DbSet<Tenant> Tenants => Set<Tenant>();
    public DbSet<TenantConfig> TenantConfigs => Set<TenantConfig>();
    public DbSet<App> Apps => Set<App>();
    public DbSet<Role> Roles => Set<Role>();
    public DbSet<Operator> Operators => Set<Operator>();
    public DbSet<AuditEntry> AuditLog => Set<AuditEntry>();
    public DbSet<ApiToken> ApiTokens => Set<ApiToken>();
    public DbSet<PlatformKey> PlatformKeys => Set<PlatformKey>();
    public DbSet<Model> Models => Set<Model>();
    public DbSet<Session> Sessions => Set<Session>();
    public DbSet<Tag> Tags => Set<Tag>();
    public DbSet<ModelVersion> ModelVersions => Set<ModelVersion>();
    public DbSet<ModelFile> ModelFiles => Set<ModelFile>();
    public DbSet<Upload> Uploads => Set<Upload>();
    public DbSet<StoredBlob> Blobs => Set<StoredBlob>();
    public DbSet<BlobGrant> BlobGrants => Set<BlobGrant>();
    public DbSet<Job> Jobs => Set<Job>();
    public DbSet<JobPreview> JobPreviews => Set<JobPreview>();
    public DbSet<CallerOptions> CallerOptions => Set<CallerOptions>();
    public DbSet<Agent> Agents => Set<Agent>();
    public DbSet<WorkerNode> Workers => Set<WorkerNode>();
    public DbSet<GeneratedImage> GeneratedImages => Set<GeneratedImage>();
    public DbSet<Entitlement> Entitlements => Set<Entitlement>();
    public DbSet<SafetyRules> SafetyRules => Set<SafetyRules>();
    public DbSet<AppWebhook> AppWebhooks => Set<AppWebhook>();
    public DbSet<WebhookDelivery> WebhookDeliveries => Set<WebhookDelivery>();
    public DbSet<WebhookAttempt> WebhookAttempts => Set<WebhookAttempt>();
    public DbSet<ResourceConfig> ResourceConfigs => Set<ResourceConfig>();
    public DbSet<Region> Regions => Set<Region>();
    public DbSet<KubeConfig> KubeConfigs => Set<KubeConfig>();
    public DbSet<FunctionTemplate> FunctionTemplates => Set<FunctionTemplate>();
    public DbSet<FunctionService> FunctionServices => Set<FunctionService>();
    public DbSet<Function> Functions => Set<Function>();
    public DbSet<FunctionVersion> FunctionVersions => Set<FunctionVersion>();
    public DbSet<FunctionAlias> FunctionAliases => Set<FunctionAlias>();
    public DbSet<FunctionTrigger> FunctionTriggers => Set<FunctionTrigger>();
    public DbSet<AsyncInvocation> AsyncInvocations => Set<AsyncInvocation>();
    public DbSet<CustomDomain> CustomDomains => Set<CustomDomain>();
    public DbSet<ScaleTemplate> ScaleTemplates => Set<ScaleTemplate>();
    public DbSet<ComputingPool> ComputingPools => Set<ComputingPool>();
    public DbSet<PoolRegion> PoolRegions => Set<PoolRegion>();
    public DbSet<AgentVersion> AgentVersions => Set<AgentVersion>();
    public DbSet<ComputingUnit> ComputingUnits => Set<ComputingUnit>();
    public DbSet<AgentFunction> AgentFunctions => Set<AgentFunction>();
    public DbSet<ScalingDecision> ScalingDecisions => Set<ScalingDecision>();
    public DbSet<UsageBucket> UsageBuckets => Set<UsageBucket>();
    public DbSet<UsageMark> UsageMarks => Set<UsageMark>();

    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        // Every timestamp is UTC; SQLite hands them back unspecified, so say so on the way out.
        configurationBuilder.Properties<DateTime>().HaveConversion<UtcConverter>();
        configurationBuilder.Properties<DateTime?>().HaveConversion<NullableUtcConverter>();
        configurationBuilder.Properties<string>().HaveMaxLength(256);
    }

    /// <summary>The condition of the queue's partial indexes: the same text in both databases.</summary>
    public const string QueuedOnly = "\"State\" = 'queued'";

    /// <summary>The condition of the relay's partial indexes on webhook messages: the same text in both databases.</summary>
    public const string PendingOnly = "\"State\" = 'pending'";

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        var b = modelBuilder;
        b.Entity<Account>(e =>
        {
            e.ToTable("accounts");
            e.HasKey(x => x.Uid);
        });
        b.Entity<Tenant>(e =>
        {
            e.ToTable("tenants");
            e.HasKey(x => x.Id);
            e.Property(x => x.State).HasConversion<string>().HasMaxLength(32);
            e.HasIndex(x => x.AccountUid);
            e.HasOne<Account>().WithMany().HasForeignKey(x => x.AccountUid).OnDelete(DeleteBehavior.Restrict);
        });
        b.Entity<TenantConfig>(e =>
        {
            e.ToTable("tenant_configs");
            e.HasKey(x => x.TenantId);
            e.Property(x => x.FunctionSettingsJson).HasMaxLength(65536);
            // Kept by the database's triggers (ActiveJobs); the application never writes it, not even a whole-row update.
            var active = e.Property(x => x.ActiveJobs).HasDefaultValue(0).Metadata;
            active.SetBeforeSaveBehavior(Microsoft.EntityFrameworkCore.Metadata.PropertySaveBehavior.Ignore);
            active.SetAfterSaveBehavior(Microsoft.EntityFrameworkCore.Metadata.PropertySaveBehavior.Ignore);
            e.HasOne<Tenant>().WithOne().HasForeignKey<TenantConfig>(x => x.TenantId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<App>(e =>
        {
            e.ToTable("apps");
            e.HasKey(x => x.Id);
            e.Property(x => x.Description).HasMaxLength(2048);
            e.HasIndex(x => new { x.TenantId, x.CreatedAt });
        });
        b.Entity<Role>(e =>
        {
            e.ToTable("roles");
            e.HasKey(x => x.Id);
            e.Property(x => x.Description).HasMaxLength(2048);
            e.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
        });
        b.Entity<Operator>(e =>
        {
            e.ToTable("operators");
            e.HasKey(x => new { x.TenantId, x.Id });
        });
        b.Entity<AuditEntry>(e =>
        {
            e.ToTable("audit_log");
            e.HasKey(x => x.Id);
            e.Property(x => x.ClientRequestId).HasMaxLength(200);
            e.HasIndex(x => new { x.TenantId, x.At });
        });
        b.Entity<ApiToken>(e =>
        {
            e.ToTable("api_tokens");
            e.HasKey(x => x.Id);
            e.Property(x => x.SecretHash).HasMaxLength(32);
            e.HasIndex(x => x.SecretHash).IsUnique();
            e.HasIndex(x => new { x.TenantId, x.AppId });
            e.HasOne<App>().WithMany().HasForeignKey(x => x.AppId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<PlatformKey>(e =>
        {
            e.ToTable("platform_keys");
            e.HasKey(x => x.Id);
            e.Property(x => x.Name).HasMaxLength(200);
            e.Property(x => x.SecretHash).HasMaxLength(32);
            e.HasIndex(x => x.SecretHash).IsUnique();
            e.HasIndex(x => x.UnitId);
        });
        b.Entity<Model>(e =>
        {
            e.ToTable("models");
            e.HasKey(x => x.Id);
            e.Property(x => x.Description).HasMaxLength(2048);
            e.Property(x => x.SourceUrl).HasMaxLength(2048);
            e.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
            e.Property(x => x.Tags).HasMaxLength(4096);
        });
        b.Entity<Tag>(e =>
        {
            e.ToTable("tags");
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
        });
        b.Entity<ModelVersion>(e =>
        {
            e.ToTable("model_versions");
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.TenantId, x.ModelId, x.Name }).IsUnique();
            e.Property(x => x.AvailableRoleIds).HasMaxLength(8192);
        });
        b.Entity<ModelFile>(e =>
        {
            e.ToTable("model_files");
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.TenantId, x.ModelId, x.AliasName }).IsUnique();
            e.HasIndex(x => x.VersionId);
            e.HasIndex(x => x.State);
            e.Property(x => x.SourceUrl).HasMaxLength(2048);
            e.Property(x => x.ErrorMessage).HasMaxLength(2048);
        });
        b.Entity<Upload>(e =>
        {
            e.ToTable("uploads");
            e.HasKey(x => x.Id);
            e.Property(x => x.SecretHash).HasMaxLength(32);
            e.Property(x => x.Error).HasMaxLength(2048);
            e.Property(x => x.PartsUploadId).HasMaxLength(1024);
        });
        b.Entity<StoredBlob>(e =>
        {
            e.ToTable("blobs");
            e.HasKey(x => x.Sha256);
            e.Property(x => x.MetadataJson).HasMaxLength(65536);
        });
        b.Entity<BlobGrant>(e =>
        {
            e.ToTable("blob_grants");
            e.HasKey(x => new { x.Sha256, x.Owner });
        });
        b.Entity<Agent>(e =>
        {
            e.ToTable("agents");
            e.HasKey(x => x.Id);
            e.Property(x => x.Description).HasMaxLength(2048);
            e.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
        });
        b.Entity<ScaleTemplate>(e =>
        {
            e.ToTable("scale_templates");
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
        });
        b.Entity<ComputingPool>(e =>
        {
            e.ToTable("computing_pools");
            e.HasKey(x => x.Id);
            e.Property(x => x.Description).HasMaxLength(2048);
            e.Property(x => x.TenantIds).HasMaxLength(65536);
            e.HasIndex(x => x.Name).IsUnique();
        });
        b.Entity<PoolRegion>(e =>
        {
            e.ToTable("pool_regions");
            e.HasKey(x => new { x.PoolId, x.Region });
            e.Property(x => x.InstanceTypesJson).HasMaxLength(65536);
            e.Property(x => x.SubprojectsJson).HasMaxLength(65536);
            e.HasOne<ComputingPool>().WithMany().HasForeignKey(x => x.PoolId).OnDelete(DeleteBehavior.Cascade);
            e.HasOne<Region>().WithMany().HasForeignKey(x => x.Region).OnDelete(DeleteBehavior.Restrict);
        });
        b.Entity<AgentVersion>(e =>
        {
            e.ToTable("agent_versions");
            e.HasKey(x => x.Id);
            e.Property(x => x.Image).HasMaxLength(1024);
            e.Property(x => x.ArgsJson).HasMaxLength(16384);
            e.Property(x => x.EnvJson).HasMaxLength(65536);
            e.Property(x => x.Description).HasMaxLength(2048);
            e.HasIndex(x => new { x.AgentId, x.VersionName }).IsUnique();
            e.HasIndex(x => x.TenantId);
            e.HasOne<Agent>().WithMany().HasForeignKey(x => x.AgentId).OnDelete(DeleteBehavior.Restrict);
        });
        b.Entity<ComputingUnit>(e =>
        {
            e.ToTable("computing_units");
            e.HasKey(x => x.Id);
            e.Property(x => x.ScaleError).HasMaxLength(2048);
            e.HasIndex(x => x.AgentId);
            e.HasIndex(x => new { x.PoolId, x.Region, x.InstanceType, x.Subproject });
            e.HasIndex(x => x.TenantId);
        });
        b.Entity<AgentFunction>(e =>
        {
            e.ToTable("agent_functions");
            e.HasKey(x => x.Id);
            e.Property(x => x.KeyCipher).HasMaxLength(1024);
            e.Property(x => x.StateReason).HasMaxLength(2048);
            e.HasIndex(x => x.UnitId);
            e.HasIndex(x => x.TenantId);
        });
        b.Entity<UsageBucket>(e =>
        {
            e.ToTable("usage_rollups");
            // The key leads with what every query names (tenant, indicator, a time range), so a query is one range seek.
            e.HasKey(x => new { x.TenantId, x.Indicator, x.Minute, x.AppId, x.ModelId, x.Engine, x.Label });
            e.Property(x => x.TenantId).HasMaxLength(64);
            e.Property(x => x.Indicator).HasMaxLength(32);
            e.Property(x => x.AppId).HasMaxLength(64);
            e.Property(x => x.ModelId).HasMaxLength(64);
            e.Property(x => x.Engine).HasMaxLength(32);
            e.Property(x => x.Label).HasMaxLength(64);
            e.Property(x => x.Histogram).HasMaxLength(2048);
            e.HasIndex(x => x.Minute);
        });
        b.Entity<UsageMark>(e =>
        {
            e.ToTable("usage_rollup_marks");
            e.HasKey(x => x.Name);
            e.Property(x => x.Name).HasMaxLength(64);
        });
        b.Entity<ScalingDecision>(e =>
        {
            e.ToTable("scaling_decisions");
            e.HasKey(x => x.Id);
            e.Property(x => x.Reason).HasMaxLength(512);
            e.Property(x => x.Error).HasMaxLength(2048);
            e.HasIndex(x => new { x.UnitId, x.At });
        });
        b.Entity<CallerOptions>(e =>
        {
            e.ToTable("caller_options");
            e.HasKey(x => x.CredentialId);
            e.Property(x => x.CredentialId).HasMaxLength(64);
            e.Property(x => x.TenantId).HasMaxLength(64);
        });
        b.Entity<JobPreview>(e =>
        {
            e.ToTable("job_previews");
            e.HasKey(x => x.JobId);
            e.Property(x => x.Png).HasMaxLength(256 * 1024);
            e.HasOne<Job>().WithOne().HasForeignKey<JobPreview>(x => x.JobId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<Job>(e =>
        {
            e.ToTable("jobs");
            e.HasKey(x => x.Id);
            e.Property(x => x.RequestJson).HasMaxLength(1 << 20);
            e.Property(x => x.ResultJson).HasMaxLength(1 << 20);
            e.Property(x => x.ErrorMessage).HasMaxLength(4096);
            e.Property(x => x.WebhookUrl).HasMaxLength(2048);
            e.Property(x => x.WebhookEvents).HasMaxLength(100);
            e.Property(x => x.CreditScopes).HasMaxLength(200);
            e.Property(x => x.ClientScope).HasMaxLength(64);
            e.HasIndex(x => new { x.TenantId, x.ClientScope, x.ClientJobId }).IsUnique();
            e.Property(x => x.LeaseKeyId).HasMaxLength(64);
            // The queue's own indexes hold queued jobs only (a partial index, QueuedOnly): every statement that reads them
            // names the state as a literal (the claim, the fair key's head and tenant's tail), and a job leaves them when it
            // is claimed. No update of a job is HOT (its state is indexed), so each of its writes adds an entry to every index
            // whose condition the new row meets: the claim and the completion no longer add five each.
            e.HasIndex(x => new { x.State, x.FairKey }).HasFilter(QueuedOnly);
            // The claim's three candidates, each found by one index seek (JobQueue.ClaimAsync). Each index holds the
            // candidate's whole ORDER BY (ties included), so the first entry is the answer: with part of it missing,
            // PostgreSQL sorted every queued job for each claim (500 ms with 100,000 queued).
            e.HasIndex(x => new { x.State, x.Priority, x.FairKey, x.CreatedAt, x.Id }).IsDescending(false, true, false, false, false).HasFilter(QueuedOnly);
            e.HasIndex(x => new { x.State, x.ModelKey, x.Priority, x.FairKey, x.CreatedAt, x.Id }).IsDescending(false, false, true, false, false, false).HasFilter(QueuedOnly);
            // A unit's workers claim their agent's jobs only; the autoscaler counts them (queued and running: a full index).
            e.HasIndex(x => new { x.State, x.AgentId, x.Priority, x.FairKey, x.CreatedAt, x.Id }).IsDescending(false, false, true, false, false, false);
            e.HasIndex(x => new { x.State, x.Priority, x.CreatedAt, x.Id }).IsDescending(false, true, false, false).HasFilter(QueuedOnly);
            e.HasIndex(x => new { x.TenantId, x.State, x.FairKey }).HasFilter(QueuedOnly);
            e.HasIndex(x => new { x.State, x.LeaseUntil });
            e.HasIndex(x => new { x.TenantId, x.CallerId, x.CreatedAt });
            e.HasIndex(x => new { x.TenantId, x.State });
            e.HasIndex(x => new { x.TenantId, x.AppId, x.CreatedAt });
            // The usage roller reads what ended in a range of minutes.
            e.HasIndex(x => x.FinishedAt);
            e.Property(x => x.Kind).HasMaxLength(16);
            e.Property(x => x.ModelJson).HasMaxLength(4096);
        });
        b.Entity<SafetyRules>(e =>
        {
            e.ToTable("safety_rules");
            e.HasKey(x => x.TenantId);
            e.Property(x => x.WordsJson).HasMaxLength(262144);
            e.Property(x => x.PatternsJson).HasMaxLength(65536);
            e.Property(x => x.ModerationUrl).HasMaxLength(2048);
        });
        b.Entity<Entitlement>(e =>
        {
            e.ToTable("entitlements");
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.TenantId, x.Scope }).IsUnique();
        });
        b.Entity<GeneratedImage>(e =>
        {
            e.ToTable("generated_images");
            e.HasKey(x => x.Id);
            e.Property(x => x.Infotext).HasMaxLength(8192);
            e.Property(x => x.DeleteError).HasMaxLength(1024);
            e.HasIndex(x => new { x.TenantId, x.CreatedAt });
            e.HasIndex(x => new { x.TenantId, x.JobId });
            e.HasIndex(x => x.CreatedAt);
        });
        b.Entity<AppWebhook>(e =>
        {
            e.ToTable("app_webhooks");
            e.HasKey(x => x.AppId);
            e.Property(x => x.Url).HasMaxLength(2048);
            e.Property(x => x.Events).HasMaxLength(100);
            e.HasIndex(x => x.TenantId);
        });
        b.Entity<WebhookDelivery>(e =>
        {
            e.ToTable("webhook_deliveries");
            e.HasKey(x => x.Id);
            e.Property(x => x.Url).HasMaxLength(2048);
            e.Property(x => x.LastError).HasMaxLength(1024);
            e.Property(x => x.Payload).HasMaxLength(4 << 20);
            // The relay asks whether anything is due, then walks the tenants with pending messages and reads each one's
            // oldest due and how many of its messages are held (WebhookRelay.TakeDueAsync). Each of those reads names the
            // state as a literal, so its indexes hold pending messages only (a partial index, PendingOnly): a delivered or
            // failed message leaves them instead of adding an entry to each, and they stay as small as the backlog.
            e.HasIndex(x => new { x.State, x.NextAttemptAt }).HasFilter(PendingOnly);
            e.HasIndex(x => new { x.State, x.TenantId, x.NextAttemptAt, x.Id }).HasFilter(PendingOnly);
            e.HasIndex(x => new { x.State, x.TenantId, x.LockedUntil }).HasFilter(PendingOnly);
            e.HasIndex(x => new { x.TenantId, x.CreatedAt });
            e.HasIndex(x => new { x.TenantId, x.JobId });
        });
        b.Entity<WebhookAttempt>(e =>
        {
            e.ToTable("webhook_attempts");
            e.HasKey(x => x.Id);
            e.Property(x => x.Error).HasMaxLength(1024);
            e.HasIndex(x => new { x.DeliveryId, x.Number });
            e.HasIndex(x => x.At);
        });
        b.Entity<WorkerNode>(e =>
        {
            e.ToTable("workers");
            e.HasKey(x => x.Id);
            e.Property(x => x.HotJson).HasMaxLength(65536);
        });
        b.Entity<Session>(e =>
        {
            e.ToTable("sessions");
            e.HasKey(x => x.Id);
            e.Property(x => x.CredentialHash).HasMaxLength(32);
            e.HasIndex(x => x.CredentialHash).IsUnique();
            e.HasIndex(x => new { x.TenantId, x.AppId, x.CreatedAt });
            e.HasIndex(x => new { x.State, x.ExpiredAt });
            e.HasIndex(x => x.EndedAt);
            e.Property(x => x.EndError).HasMaxLength(1000);
        });
        b.Entity<ResourceConfig>(e =>
        {
            e.ToTable("resource_configs");
            e.HasKey(x => x.Id);
            e.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
        });

        b.Entity<Region>(e =>
        {
            e.ToTable("regions");
            e.HasKey(x => x.Name);
            e.HasOne<KubeConfig>().WithMany().HasForeignKey(x => x.KubeConfigId).OnDelete(DeleteBehavior.Restrict);
        });
        b.Entity<KubeConfig>(e =>
        {
            e.ToTable("kube_configs");
            e.HasKey(x => x.Id);
            e.HasIndex(x => x.Name).IsUnique();
            e.Property(x => x.ConfigCipher).HasMaxLength(262144);
        });
        b.Entity<FunctionTemplate>(e =>
        {
            e.ToTable("function_templates");
            e.HasKey(x => x.Id);
            e.HasIndex(x => x.Name).IsUnique();
            e.Property(x => x.Description).HasMaxLength(2048);
            e.Property(x => x.Image).HasMaxLength(1024);
            e.Property(x => x.Command).HasMaxLength(1024);
            e.Property(x => x.ArgsJson).HasMaxLength(65536);
            e.Property(x => x.EnvironmentJson).HasMaxLength(65536);
            e.Property(x => x.ParametersSchemaJson).HasMaxLength(65536);
        });
        b.Entity<FunctionService>(e =>
        {
            e.ToTable("function_services");
            e.HasKey(x => x.Id);
            e.Property(x => x.Description).HasMaxLength(2048);
            e.HasIndex(x => new { x.TenantId, x.Name }).IsUnique();
        });
        b.Entity<Function>(e =>
        {
            e.ToTable("functions");
            e.HasKey(x => x.Id);
            e.Property(x => x.Description).HasMaxLength(2048);
            e.Property(x => x.ConfigJson).HasMaxLength(131072);
            e.Property(x => x.InstanceParametersJson).HasMaxLength(65536);
            e.Property(x => x.AsyncConfigJson).HasMaxLength(8192);
            e.Property(x => x.StateReason).HasMaxLength(2048);
            e.Property(x => x.State).HasMaxLength(16);
            e.HasIndex(x => new { x.ServiceId, x.Name }).IsUnique();
            e.HasIndex(x => x.TenantId);
            e.HasOne<FunctionService>().WithMany().HasForeignKey(x => x.ServiceId).OnDelete(DeleteBehavior.Restrict);
        });
        b.Entity<FunctionVersion>(e =>
        {
            e.ToTable("function_versions");
            e.HasKey(x => new { x.FunctionId, x.Number });
            e.Property(x => x.ConfigJson).HasMaxLength(131072);
            e.Property(x => x.Description).HasMaxLength(2048);
            e.HasOne<Function>().WithMany().HasForeignKey(x => x.FunctionId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<FunctionAlias>(e =>
        {
            e.ToTable("function_aliases");
            e.HasKey(x => new { x.FunctionId, x.Name });
            e.Property(x => x.Description).HasMaxLength(2048);
            e.HasOne<Function>().WithMany().HasForeignKey(x => x.FunctionId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<FunctionTrigger>(e =>
        {
            e.ToTable("function_triggers");
            e.HasKey(x => new { x.FunctionId, x.Name });
            e.Property(x => x.Payload).HasMaxLength(65536);
            e.HasIndex(x => new { x.Kind, x.NextRunAt });
            e.HasOne<Function>().WithMany().HasForeignKey(x => x.FunctionId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<AsyncInvocation>(e =>
        {
            e.ToTable("async_invocations");
            e.HasKey(x => x.Id);
            e.Property(x => x.Path).HasMaxLength(2048);
            e.Property(x => x.Error).HasMaxLength(2048);
            e.Property(x => x.Destination).HasMaxLength(2048);
            e.Property(x => x.RequestBody).HasMaxLength(6 * 1024 * 1024);
            e.HasIndex(x => new { x.State, x.NextAttemptAt });
            e.HasIndex(x => new { x.FunctionId, x.CreatedAt });
            e.HasOne<Function>().WithMany().HasForeignKey(x => x.FunctionId).OnDelete(DeleteBehavior.Cascade);
        });
        b.Entity<CustomDomain>(e =>
        {
            e.ToTable("custom_domains");
            e.HasKey(x => x.Host);
            e.Property(x => x.CertificatePem).HasMaxLength(65536);
            e.Property(x => x.PrivateKeyCipher).HasMaxLength(65536);
            e.HasIndex(x => x.FunctionId);
            e.HasOne<Function>().WithMany().HasForeignKey(x => x.FunctionId).OnDelete(DeleteBehavior.Cascade);
        });

        // Tenant isolation: one filter per tenant-owned entity, reading this context's scope.
        b.Entity<TenantConfig>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<App>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<Role>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<Operator>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<ApiToken>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<Model>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<Session>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<ResourceConfig>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<ModelVersion>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<ModelFile>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<Upload>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<Job>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<JobPreview>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<CallerOptions>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<Agent>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<GeneratedImage>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<Entitlement>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<SafetyRules>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<AppWebhook>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<WebhookDelivery>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<WebhookAttempt>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<FunctionService>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<Function>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<FunctionVersion>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<FunctionAlias>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<FunctionTrigger>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<AsyncInvocation>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<CustomDomain>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<ScaleTemplate>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<AgentVersion>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<ComputingUnit>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<UsageBucket>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<AgentFunction>().HasQueryFilter(x => x.TenantId == TenantScope);
        b.Entity<ScalingDecision>().HasQueryFilter(x => x.TenantId == TenantScope);
    }

    public override int SaveChanges(bool acceptAllChangesOnSuccess)
    {
        CheckTenantWrites();
        return base.SaveChanges(acceptAllChangesOnSuccess);
    }

    public override Task<int> SaveChangesAsync(bool acceptAllChangesOnSuccess, CancellationToken cancellationToken = default)
    {
        CheckTenantWrites();
        return base.SaveChangesAsync(acceptAllChangesOnSuccess, cancellationToken);
    }

    /// <summary>Writes are never filtered by EF, so a write of another tenant's row is refused here.</summary>
    private void CheckTenantWrites()
    {
        foreach (var entry in ChangeTracker.Entries<ITenantOwned>())
        {
            if (entry.State is EntityState.Unchanged or EntityState.Detached)
            {
                continue;
            }

            if (TenantScope is null || entry.Entity.TenantId != TenantScope)
            {
                throw new CrossTenantWriteException(entry.Metadata.ClrType.Name);
            }
        }
    }

    private sealed class UtcConverter() : ValueConverter<DateTime, DateTime>(
        v => v.Kind == DateTimeKind.Utc ? v : v.ToUniversalTime(),
        v => DateTime.SpecifyKind(v, DateTimeKind.Utc));

    private sealed class NullableUtcConverter() : ValueConverter<DateTime?, DateTime?>(
        v => v.HasValue ? (v.Value.Kind == DateTimeKind.Utc ? v : v.Value.ToUniversalTime()) : v,
        v => v.HasValue ? DateTime.SpecifyKind(v.Value, DateTimeKind.Utc) : v);
}
