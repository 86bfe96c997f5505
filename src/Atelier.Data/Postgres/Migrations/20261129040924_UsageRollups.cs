using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class UsageRollups : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "usage_rollup_marks",
                columns: table => new
                {
                    Name = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    RolledUntil = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    By = table.Column<string>(type: "character varying(256)", maxLength: 256, nullable: true),
                    UpdatedAt = table.Column<DateTime>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_usage_rollup_marks", x => x.Name);
                });

            migrationBuilder.CreateTable(
                name: "usage_rollups",
                columns: table => new
                {
                    TenantId = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    Indicator = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    Minute = table.Column<DateTime>(type: "timestamp with time zone", nullable: false),
                    AppId = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    ModelId = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    Engine = table.Column<string>(type: "character varying(32)", maxLength: 32, nullable: false),
                    Label = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    Count = table.Column<long>(type: "bigint", nullable: false),
                    Sum = table.Column<double>(type: "double precision", nullable: false),
                    Histogram = table.Column<string>(type: "character varying(2048)", maxLength: 2048, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_usage_rollups", x => new { x.TenantId, x.Indicator, x.Minute, x.AppId, x.ModelId, x.Engine, x.Label });
                });

            migrationBuilder.CreateIndex(
                name: "IX_webhook_attempts_At",
                table: "webhook_attempts",
                column: "At");

            migrationBuilder.CreateIndex(
                name: "IX_sessions_EndedAt",
                table: "sessions",
                column: "EndedAt");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_FinishedAt",
                table: "jobs",
                column: "FinishedAt");

            migrationBuilder.CreateIndex(
                name: "IX_generated_images_CreatedAt",
                table: "generated_images",
                column: "CreatedAt");

            migrationBuilder.CreateIndex(
                name: "IX_usage_rollups_Minute",
                table: "usage_rollups",
                column: "Minute");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "usage_rollup_marks");

            migrationBuilder.DropTable(
                name: "usage_rollups");

            migrationBuilder.DropIndex(
                name: "IX_webhook_attempts_At",
                table: "webhook_attempts");

            migrationBuilder.DropIndex(
                name: "IX_sessions_EndedAt",
                table: "sessions");

            migrationBuilder.DropIndex(
                name: "IX_jobs_FinishedAt",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_generated_images_CreatedAt",
                table: "generated_images");
        }
    }
}
