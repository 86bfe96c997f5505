using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Postgres.Migrations
{
    /// <summary>
    /// The queue's five indexes that only queued jobs are looked up by become partial (<c>"State" = 'queued'</c>,
    /// <see cref="global::Atelier.Data.AtelierDb.QueuedOnly"/>): a claim and a completion no longer add an entry to each.
    /// </summary>
    public partial class QueuedOnlyIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_jobs_State_FairKey",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_ModelKey_Priority_FairKey_CreatedAt_Id",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_Priority_CreatedAt_Id",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_Priority_FairKey_CreatedAt_Id",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_TenantId_State_FairKey",
                table: "jobs");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_FairKey",
                table: "jobs",
                columns: new[] { "State", "FairKey" },
                filter: "\"State\" = 'queued'");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_ModelKey_Priority_FairKey_CreatedAt_Id",
                table: "jobs",
                columns: new[] { "State", "ModelKey", "Priority", "FairKey", "CreatedAt", "Id" },
                descending: new[] { false, false, true, false, false, false },
                filter: "\"State\" = 'queued'");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_Priority_CreatedAt_Id",
                table: "jobs",
                columns: new[] { "State", "Priority", "CreatedAt", "Id" },
                descending: new[] { false, true, false, false },
                filter: "\"State\" = 'queued'");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_Priority_FairKey_CreatedAt_Id",
                table: "jobs",
                columns: new[] { "State", "Priority", "FairKey", "CreatedAt", "Id" },
                descending: new[] { false, true, false, false, false },
                filter: "\"State\" = 'queued'");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_TenantId_State_FairKey",
                table: "jobs",
                columns: new[] { "TenantId", "State", "FairKey" },
                filter: "\"State\" = 'queued'");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_jobs_State_FairKey",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_ModelKey_Priority_FairKey_CreatedAt_Id",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_Priority_CreatedAt_Id",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_Priority_FairKey_CreatedAt_Id",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_TenantId_State_FairKey",
                table: "jobs");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_FairKey",
                table: "jobs",
                columns: new[] { "State", "FairKey" });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_ModelKey_Priority_FairKey_CreatedAt_Id",
                table: "jobs",
                columns: new[] { "State", "ModelKey", "Priority", "FairKey", "CreatedAt", "Id" },
                descending: new[] { false, false, true, false, false, false });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_Priority_CreatedAt_Id",
                table: "jobs",
                columns: new[] { "State", "Priority", "CreatedAt", "Id" },
                descending: new[] { false, true, false, false });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_Priority_FairKey_CreatedAt_Id",
                table: "jobs",
                columns: new[] { "State", "Priority", "FairKey", "CreatedAt", "Id" },
                descending: new[] { false, true, false, false, false });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_TenantId_State_FairKey",
                table: "jobs",
                columns: new[] { "TenantId", "State", "FairKey" });
        }
    }
}
