using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <summary>
    /// The jobs table is a queue, and so are the webhook messages: the share of queued (pending) rows swings from none to
    /// most between two analyzes, and a plan made with statistics of an empty queue reads every queued job where it
    /// should read one (docs/benchmarks.md, issue 18). Autovacuum analyzes both after every 1,000 changes, whatever their
    /// size (the default waits for a tenth of the table: a million kept jobs would wait for 100,000 changes); an analyze
    /// samples at most 30,000 rows, so its cost does not grow with the table. Vacuum keeps its defaults (it reads every
    /// index). The model does not change.
    /// </summary>
    public partial class QueueStatistics : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                ALTER TABLE jobs SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);
                ALTER TABLE webhook_deliveries SET (autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                ALTER TABLE jobs RESET (autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
                ALTER TABLE webhook_deliveries RESET (autovacuum_analyze_scale_factor, autovacuum_analyze_threshold);
                """);
        }
    }
}
