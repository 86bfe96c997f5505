using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class Entitlements : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "entitlements",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    Scope = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: false),
                    MaxConcurrentJobs = table.Column<int>(type: "integer", nullable: true),
                    MaxJobsPerPeriod = table.Column<int>(type: "integer", nullable: true),
                    PeriodSeconds = table.Column<int>(type: "integer", nullable: false),
                    Credits = table.Column<long>(type: "bigint", nullable: true),
                    UpdatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_entitlements", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_TenantId_AppId_CreatedAt",
                table: "jobs",
                columns: new[] { "TenantId", "AppId", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_TenantId_State",
                table: "jobs",
                columns: new[] { "TenantId", "State" });

            migrationBuilder.CreateIndex(
                name: "IX_entitlements_TenantId_Scope",
                table: "entitlements",
                columns: new[] { "TenantId", "Scope" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "entitlements");

            migrationBuilder.DropIndex(
                name: "IX_jobs_TenantId_AppId_CreatedAt",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_TenantId_State",
                table: "jobs");
        }
    }
}
