using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class Scheduling : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_jobs_State_Priority_CreatedAt",
                table: "jobs");

            migrationBuilder.AddColumn<string>(
                name: "AppId",
                table: "jobs",
                type: "character varying(256)",
                maxLength: 256,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "CallerId",
                table: "jobs",
                type: "character varying(256)",
                maxLength: 256,
                nullable: true);

            migrationBuilder.AddColumn<DateTime>(
                name: "CancelRequestedAt",
                table: "jobs",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "FairKey",
                table: "jobs",
                type: "bigint",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.AddColumn<string>(
                name: "Kind",
                table: "jobs",
                type: "character varying(16)",
                maxLength: 16,
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<string>(
                name: "ModelJson",
                table: "jobs",
                type: "character varying(4096)",
                maxLength: 4096,
                nullable: true);

            migrationBuilder.AddColumn<double>(
                name: "Progress",
                table: "jobs",
                type: "double precision",
                nullable: false,
                defaultValue: 0.0);

            migrationBuilder.AddColumn<int>(
                name: "ProgressStep",
                table: "jobs",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<int>(
                name: "ProgressSteps",
                table: "jobs",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            migrationBuilder.AddColumn<DateTime>(
                name: "ResultExpiresAt",
                table: "jobs",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "workers",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    KeyId = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    Engine = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    Slots = table.Column<int>(type: "integer", nullable: false),
                    HotJson = table.Column<string>(type: "character varying(65536)", maxLength: 65536, nullable: false),
                    RegisteredAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    LastSeenAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_workers", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_FairKey",
                table: "jobs",
                columns: new[] { "State", "FairKey" });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_ModelKey_Priority_FairKey",
                table: "jobs",
                columns: new[] { "State", "ModelKey", "Priority", "FairKey" },
                descending: new[] { false, false, true, false });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_Priority_CreatedAt",
                table: "jobs",
                columns: new[] { "State", "Priority", "CreatedAt" },
                descending: new[] { false, true, false });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_Priority_FairKey",
                table: "jobs",
                columns: new[] { "State", "Priority", "FairKey" },
                descending: new[] { false, true, false });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_TenantId_CallerId_CreatedAt",
                table: "jobs",
                columns: new[] { "TenantId", "CallerId", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_TenantId_State_FairKey",
                table: "jobs",
                columns: new[] { "TenantId", "State", "FairKey" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "workers");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_FairKey",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_ModelKey_Priority_FairKey",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_Priority_CreatedAt",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_Priority_FairKey",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_TenantId_CallerId_CreatedAt",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_TenantId_State_FairKey",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "AppId",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "CallerId",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "CancelRequestedAt",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "FairKey",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "Kind",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "ModelJson",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "Progress",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "ProgressStep",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "ProgressSteps",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "ResultExpiresAt",
                table: "jobs");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_Priority_CreatedAt",
                table: "jobs",
                columns: new[] { "State", "Priority", "CreatedAt" });
        }
    }
}
