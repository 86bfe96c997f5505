using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class WorkerKeys : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "Scope",
                table: "platform_keys",
                type: "TEXT",
                maxLength: 256,
                nullable: false,
                defaultValue: "admin");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Scope",
                table: "platform_keys");
        }
    }
}
