using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
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
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Scope = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    MaxConcurrentJobs = table.Column<int>(type: "INTEGER", nullable: true),
                    MaxJobsPerPeriod = table.Column<int>(type: "INTEGER", nullable: true),
                    PeriodSeconds = table.Column<int>(type: "INTEGER", nullable: false),
                    Credits = table.Column<long>(type: "INTEGER", nullable: true),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
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
