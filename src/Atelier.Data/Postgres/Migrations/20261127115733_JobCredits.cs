using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
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
                type: "character varying(200)",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "CreditsCharged",
                table: "jobs",
                type: "integer",
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
