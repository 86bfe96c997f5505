using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class RelayTenantIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // Built without blocking writes: webhook_deliveries keeps 30 days of messages, and its rows are inserted by
            // the jobs' state changes, which would otherwise wait for the build.
            migrationBuilder.Sql(
                """CREATE INDEX CONCURRENTLY IF NOT EXISTS "IX_webhook_deliveries_State_TenantId_LockedUntil" ON webhook_deliveries ("State", "TenantId", "LockedUntil");""",
                suppressTransaction: true);
            migrationBuilder.Sql(
                """CREATE INDEX CONCURRENTLY IF NOT EXISTS "IX_webhook_deliveries_State_TenantId_NextAttemptAt_Id" ON webhook_deliveries ("State", "TenantId", "NextAttemptAt", "Id");""",
                suppressTransaction: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_webhook_deliveries_State_TenantId_LockedUntil",
                table: "webhook_deliveries");

            migrationBuilder.DropIndex(
                name: "IX_webhook_deliveries_State_TenantId_NextAttemptAt_Id",
                table: "webhook_deliveries");
        }
    }
}
