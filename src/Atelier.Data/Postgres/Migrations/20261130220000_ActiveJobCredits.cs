using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <summary>
    /// A submit takes a place its tenant set aside before, in one of several rows, instead of the tenant's counter row
    /// (<see cref="global::Atelier.Data.ActiveJobs.PostgresCreditsUp"/>), so the tenant's submits no longer wait for each
    /// other's commits. The model does not change: the table is the triggers' own.
    /// </summary>
    public partial class ActiveJobCredits : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            foreach (var sql in global::Atelier.Data.ActiveJobs.PostgresCreditsUp)
            {
                migrationBuilder.Sql(sql);
            }
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            foreach (var sql in global::Atelier.Data.ActiveJobs.PostgresCreditsDown)
            {
                migrationBuilder.Sql(sql);
            }
        }
    }
}
