using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class RelayTenantIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "IX_webhook_deliveries_State_TenantId_LockedUntil",
                table: "webhook_deliveries",
                columns: new[] { "State", "TenantId", "LockedUntil" });

            migrationBuilder.CreateIndex(
                name: "IX_webhook_deliveries_State_TenantId_NextAttemptAt_Id",
                table: "webhook_deliveries",
                columns: new[] { "State", "TenantId", "NextAttemptAt", "Id" });
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
