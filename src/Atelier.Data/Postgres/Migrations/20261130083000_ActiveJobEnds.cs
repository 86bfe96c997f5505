using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <summary>
    /// The ends of a tenant's jobs are counted apart from its counter row (<see cref="global::Atelier.Data.ActiveJobs.PostgresEndsUp"/>),
    /// so a job's end no longer waits for the tenant's submits, nor they for it. The model does not change: the table is
    /// the triggers' own.
    /// </summary>
    public partial class ActiveJobEnds : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            foreach (var sql in global::Atelier.Data.ActiveJobs.PostgresEndsUp)
            {
                migrationBuilder.Sql(sql);
            }
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            foreach (var sql in global::Atelier.Data.ActiveJobs.PostgresEndsDown)
            {
                migrationBuilder.Sql(sql);
            }
        }
    }
}
