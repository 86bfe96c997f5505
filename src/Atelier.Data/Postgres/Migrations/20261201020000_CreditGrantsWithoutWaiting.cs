using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <summary>
    /// An insert that holds its tenant's counter row sets places aside in a place row no one holds, never waiting for one
    /// (<see cref="global::Atelier.Data.ActiveJobs.PostgresGrantsUp"/>): waiting there closed a deadlock with a submit
    /// that held a place row it had looked at and waited for the counter row. The model does not change.
    /// </summary>
    public partial class CreditGrantsWithoutWaiting : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            foreach (var sql in global::Atelier.Data.ActiveJobs.PostgresGrantsUp)
            {
                migrationBuilder.Sql(sql);
            }
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            foreach (var sql in global::Atelier.Data.ActiveJobs.PostgresGrantsDown)
            {
                migrationBuilder.Sql(sql);
            }
        }
    }
}
