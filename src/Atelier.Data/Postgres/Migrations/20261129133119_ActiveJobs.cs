using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class ActiveJobs : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "ActiveJobs",
                table: "tenant_configs",
                type: "integer",
                nullable: false,
                defaultValue: 0);

            // The counter is kept by the database (triggers on jobs) and starts from the jobs as they are.
            foreach (var sql in global::Atelier.Data.ActiveJobs.PostgresUp)
            {
                migrationBuilder.Sql(sql);
            }
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            foreach (var sql in global::Atelier.Data.ActiveJobs.PostgresDown)
            {
                migrationBuilder.Sql(sql);
            }

            migrationBuilder.DropColumn(
                name: "ActiveJobs",
                table: "tenant_configs");
        }
    }
}
