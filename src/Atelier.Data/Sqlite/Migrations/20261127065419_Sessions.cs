using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class Sessions : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<long>(
                name: "SessionSecondsCap",
                table: "api_tokens",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "TotalEndedSessionSeconds",
                table: "api_tokens",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0L);

            migrationBuilder.CreateTable(
                name: "resource_configs",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Engine = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    InstanceType = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    ModelId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    InstanceCount = table.Column<int>(type: "INTEGER", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_resource_configs", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "sessions",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    AppId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TokenId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    EndUserId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    RoleId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Mode = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    ResourceConfigId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    CredentialHash = table.Column<byte[]>(type: "BLOB", maxLength: 32, nullable: false),
                    CredentialPrefix = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    State = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    ExpiredAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    EndedAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    EndReason = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    DurationSeconds = table.Column<long>(type: "INTEGER", nullable: true),
                    Version = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_sessions", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_resource_configs_TenantId_Name",
                table: "resource_configs",
                columns: new[] { "TenantId", "Name" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_sessions_CredentialHash",
                table: "sessions",
                column: "CredentialHash",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_sessions_State_ExpiredAt",
                table: "sessions",
                columns: new[] { "State", "ExpiredAt" });

            migrationBuilder.CreateIndex(
                name: "IX_sessions_TenantId_AppId_CreatedAt",
                table: "sessions",
                columns: new[] { "TenantId", "AppId", "CreatedAt" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "resource_configs");

            migrationBuilder.DropTable(
                name: "sessions");

            migrationBuilder.DropColumn(
                name: "SessionSecondsCap",
                table: "api_tokens");

            migrationBuilder.DropColumn(
                name: "TotalEndedSessionSeconds",
                table: "api_tokens");
        }
    }
}
