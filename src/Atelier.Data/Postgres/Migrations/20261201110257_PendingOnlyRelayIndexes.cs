using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <summary>
    /// The relay's three indexes on webhook messages become partial (<c>"State" = 'pending'</c>,
    /// <see cref="global::Atelier.Data.AtelierDb.PendingOnly"/>): a delivered or failed message leaves them instead of
    /// adding an entry to each, so they hold the backlog only (docs/benchmarks.md, issue 18).
    /// </summary>
    public partial class PendingOnlyRelayIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_webhook_deliveries_State_NextAttemptAt",
                table: "webhook_deliveries");

            migrationBuilder.DropIndex(
                name: "IX_webhook_deliveries_State_TenantId_LockedUntil",
                table: "webhook_deliveries");

            migrationBuilder.DropIndex(
                name: "IX_webhook_deliveries_State_TenantId_NextAttemptAt_Id",
                table: "webhook_deliveries");

            migrationBuilder.CreateIndex(
                name: "IX_webhook_deliveries_State_NextAttemptAt",
                table: "webhook_deliveries",
                columns: new[] { "State", "NextAttemptAt" },
                filter: "\"State\" = 'pending'");

            migrationBuilder.CreateIndex(
                name: "IX_webhook_deliveries_State_TenantId_LockedUntil",
                table: "webhook_deliveries",
                columns: new[] { "State", "TenantId", "LockedUntil" },
                filter: "\"State\" = 'pending'");

            migrationBuilder.CreateIndex(
                name: "IX_webhook_deliveries_State_TenantId_NextAttemptAt_Id",
                table: "webhook_deliveries",
                columns: new[] { "State", "TenantId", "NextAttemptAt", "Id" },
                filter: "\"State\" = 'pending'");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_webhook_deliveries_State_NextAttemptAt",
                table: "webhook_deliveries");

            migrationBuilder.DropIndex(
                name: "IX_webhook_deliveries_State_TenantId_LockedUntil",
                table: "webhook_deliveries");

            migrationBuilder.DropIndex(
                name: "IX_webhook_deliveries_State_TenantId_NextAttemptAt_Id",
                table: "webhook_deliveries");

            migrationBuilder.CreateIndex(
                name: "IX_webhook_deliveries_State_NextAttemptAt",
                table: "webhook_deliveries",
                columns: new[] { "State", "NextAttemptAt" });

            migrationBuilder.CreateIndex(
                name: "IX_webhook_deliveries_State_TenantId_LockedUntil",
                table: "webhook_deliveries",
                columns: new[] { "State", "TenantId", "LockedUntil" });

            migrationBuilder.CreateIndex(
                name: "IX_webhook_deliveries_State_TenantId_NextAttemptAt_Id",
                table: "webhook_deliveries",
                columns: new[] { "State", "TenantId", "NextAttemptAt", "Id" });
        }
    }
}
