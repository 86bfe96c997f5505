using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class ComputingUnits : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "DefaultAgentId",
                table: "tenant_configs",
                type: "TEXT",
                maxLength: 256,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "AgentId",
                table: "resource_configs",
                type: "TEXT",
                maxLength: 256,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "AgentId",
                table: "platform_keys",
                type: "TEXT",
                maxLength: 256,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "TenantId",
                table: "platform_keys",
                type: "TEXT",
                maxLength: 256,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "UnitId",
                table: "platform_keys",
                type: "TEXT",
                maxLength: 256,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "AgentId",
                table: "api_tokens",
                type: "TEXT",
                maxLength: 256,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Description",
                table: "agents",
                type: "TEXT",
                maxLength: 2048,
                nullable: true);

            migrationBuilder.AddColumn<DateTime>(
                name: "UpdatedAt",
                table: "agents",
                type: "TEXT",
                nullable: false,
                defaultValue: new DateTime(1, 1, 1, 0, 0, 0, 0, DateTimeKind.Unspecified));

            migrationBuilder.CreateTable(
                name: "agent_functions",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    UnitId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Region = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    KeyId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    KeyCipher = table.Column<byte[]>(type: "BLOB", maxLength: 1024, nullable: false),
                    AppliedReplicas = table.Column<int>(type: "INTEGER", nullable: false),
                    State = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    StateReason = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_agent_functions", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "agent_versions",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    AgentId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    VersionName = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Image = table.Column<string>(type: "TEXT", maxLength: 1024, nullable: false),
                    Engine = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    ArgsJson = table.Column<string>(type: "TEXT", maxLength: 16384, nullable: false),
                    EnvJson = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: false),
                    ScaleTemplateId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Description = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_agent_versions", x => x.Id);
                    table.ForeignKey(
                        name: "FK_agent_versions_agents_AgentId",
                        column: x => x.AgentId,
                        principalTable: "agents",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "computing_pools",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Description = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    TenantIds = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_computing_pools", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "computing_units",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    AgentId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    AgentVersionId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    PoolId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Region = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    InstanceType = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Subproject = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Replicas = table.Column<int>(type: "INTEGER", nullable: false),
                    Autoscale = table.Column<bool>(type: "INTEGER", nullable: false),
                    FunctionId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    UpSince = table.Column<DateTime>(type: "TEXT", nullable: true),
                    DownSince = table.Column<DateTime>(type: "TEXT", nullable: true),
                    LastBusyAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    ScaleFailures = table.Column<int>(type: "INTEGER", nullable: false),
                    RetryScaleAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    ScaleError = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_computing_units", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "scale_templates",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    MinReplicas = table.Column<int>(type: "INTEGER", nullable: false),
                    MaxReplicas = table.Column<int>(type: "INTEGER", nullable: false),
                    TargetBusySlots = table.Column<double>(type: "REAL", nullable: false),
                    ScaleUpWindowSeconds = table.Column<int>(type: "INTEGER", nullable: false),
                    ScaleDownWindowSeconds = table.Column<int>(type: "INTEGER", nullable: false),
                    IdleSecondsBeforeZero = table.Column<int>(type: "INTEGER", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_scale_templates", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "scaling_decisions",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    UnitId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    At = table.Column<DateTime>(type: "TEXT", nullable: false),
                    Leader = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Term = table.Column<long>(type: "INTEGER", nullable: false),
                    Queued = table.Column<int>(type: "INTEGER", nullable: false),
                    Running = table.Column<int>(type: "INTEGER", nullable: false),
                    SlotsPerReplica = table.Column<int>(type: "INTEGER", nullable: false),
                    TargetBusySlots = table.Column<double>(type: "REAL", nullable: false),
                    From = table.Column<int>(type: "INTEGER", nullable: false),
                    Wanted = table.Column<int>(type: "INTEGER", nullable: false),
                    Available = table.Column<int>(type: "INTEGER", nullable: false),
                    To = table.Column<int>(type: "INTEGER", nullable: false),
                    Reason = table.Column<string>(type: "TEXT", maxLength: 512, nullable: false),
                    Applied = table.Column<bool>(type: "INTEGER", nullable: false),
                    Error = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_scaling_decisions", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "pool_regions",
                columns: table => new
                {
                    PoolId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Region = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    InstanceTypesJson = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: false),
                    SubprojectsJson = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_pool_regions", x => new { x.PoolId, x.Region });
                    table.ForeignKey(
                        name: "FK_pool_regions_computing_pools_PoolId",
                        column: x => x.PoolId,
                        principalTable: "computing_pools",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "FK_pool_regions_regions_Region",
                        column: x => x.Region,
                        principalTable: "regions",
                        principalColumn: "Name",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateIndex(
                name: "IX_platform_keys_UnitId",
                table: "platform_keys",
                column: "UnitId");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_AgentId_Priority_FairKey",
                table: "jobs",
                columns: new[] { "State", "AgentId", "Priority", "FairKey" },
                descending: new[] { false, false, true, false });

            migrationBuilder.CreateIndex(
                name: "IX_agent_functions_TenantId",
                table: "agent_functions",
                column: "TenantId");

            migrationBuilder.CreateIndex(
                name: "IX_agent_functions_UnitId",
                table: "agent_functions",
                column: "UnitId");

            migrationBuilder.CreateIndex(
                name: "IX_agent_versions_AgentId_VersionName",
                table: "agent_versions",
                columns: new[] { "AgentId", "VersionName" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_agent_versions_TenantId",
                table: "agent_versions",
                column: "TenantId");

            migrationBuilder.CreateIndex(
                name: "IX_computing_pools_Name",
                table: "computing_pools",
                column: "Name",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_computing_units_AgentId",
                table: "computing_units",
                column: "AgentId");

            migrationBuilder.CreateIndex(
                name: "IX_computing_units_PoolId_Region_InstanceType_Subproject",
                table: "computing_units",
                columns: new[] { "PoolId", "Region", "InstanceType", "Subproject" });

            migrationBuilder.CreateIndex(
                name: "IX_computing_units_TenantId",
                table: "computing_units",
                column: "TenantId");

            migrationBuilder.CreateIndex(
                name: "IX_pool_regions_Region",
                table: "pool_regions",
                column: "Region");

            migrationBuilder.CreateIndex(
                name: "IX_scale_templates_TenantId_Name",
                table: "scale_templates",
                columns: new[] { "TenantId", "Name" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_scaling_decisions_UnitId_At",
                table: "scaling_decisions",
                columns: new[] { "UnitId", "At" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "agent_functions");

            migrationBuilder.DropTable(
                name: "agent_versions");

            migrationBuilder.DropTable(
                name: "computing_units");

            migrationBuilder.DropTable(
                name: "pool_regions");

            migrationBuilder.DropTable(
                name: "scale_templates");

            migrationBuilder.DropTable(
                name: "scaling_decisions");

            migrationBuilder.DropTable(
                name: "computing_pools");

            migrationBuilder.DropIndex(
                name: "IX_platform_keys_UnitId",
                table: "platform_keys");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_AgentId_Priority_FairKey",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "DefaultAgentId",
                table: "tenant_configs");

            migrationBuilder.DropColumn(
                name: "AgentId",
                table: "resource_configs");

            migrationBuilder.DropColumn(
                name: "AgentId",
                table: "platform_keys");

            migrationBuilder.DropColumn(
                name: "TenantId",
                table: "platform_keys");

            migrationBuilder.DropColumn(
                name: "UnitId",
                table: "platform_keys");

            migrationBuilder.DropColumn(
                name: "AgentId",
                table: "api_tokens");

            migrationBuilder.DropColumn(
                name: "Description",
                table: "agents");

            migrationBuilder.DropColumn(
                name: "UpdatedAt",
                table: "agents");
        }
    }
}
