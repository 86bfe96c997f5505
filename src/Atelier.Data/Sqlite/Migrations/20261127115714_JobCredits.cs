using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class JobCredits : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "CreditScopes",
                table: "jobs",
                type: "TEXT",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "CreditsCharged",
                table: "jobs",
                type: "INTEGER",
                nullable: false,
                defaultValue: 0);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "CreditScopes",
                table: "jobs");

            migrationBuilder.DropColumn(
                name: "CreditsCharged",
                table: "jobs");
        }
    }
}
