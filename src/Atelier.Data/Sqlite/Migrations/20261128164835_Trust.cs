using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class Trust : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_jobs_TenantId_ClientJobId",
                table: "jobs");

            migrationBuilder.AddColumn<string>(
                name: "EndError",
                table: "sessions",
                type: "TEXT",
                maxLength: 1000,
                nullable: true);

            migrationBuilder.AddColumn<DateTime>(
                name: "LastUsedAt",
                table: "platform_keys",
                type: "TEXT",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Name",
                table: "platform_keys",
                type: "TEXT",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "ClientScope",
                table: "jobs",
                type: "TEXT",
                maxLength: 64,
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<string>(
                name: "LeaseKeyId",
                table: "jobs",
                type: "TEXT",
                maxLength: 64,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "ClientRequestId",
                table: "audit_log",
                type: "TEXT",
                maxLength: 200,
                nullable: true);

            // Jobs made before idempotency keys were scoped: a session's belong to the session, a token's to its app.
            migrationBuilder.Sql("""UPDATE jobs SET "ClientScope" = CASE WHEN "CallerId" LIKE 'ses\_%' ESCAPE '\' THEN "CallerId" ELSE COALESCE("AppId", '*') END""");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_TenantId_ClientScope_ClientJobId",
                table: "jobs",
                columns: new[] { "TenantId", "ClientScope", "ClientJobId" },
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_jobs_TenantId_ClientScope_ClientJobId",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "EndError",
                table: "sessions");

            migrationBuilder.DropColumn(
                name: "LastUsedAt",
                table: "platform_keys");

            migrationBuilder.DropColumn(
                name: "Name",
                table: "platform_keys");

            migrationBuilder.DropColumn(
                name: "ClientScope",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "LeaseKeyId",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "ClientRequestId",
                table: "audit_log");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_TenantId_ClientJobId",
                table: "jobs",
                columns: new[] { "TenantId", "ClientJobId" },
                unique: true);
        }
    }
}
