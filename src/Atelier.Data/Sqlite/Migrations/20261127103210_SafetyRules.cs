using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class SafetyRules : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "safety_rules",
                columns: table => new
                {
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    WordsJson = table.Column<string>(type: "TEXT", maxLength: 262144, nullable: false),
                    PatternsJson = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: false),
                    ModerationUrl = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_safety_rules", x => x.TenantId);
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "safety_rules");
        }
    }
}
