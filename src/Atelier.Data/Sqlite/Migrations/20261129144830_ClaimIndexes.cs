using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class ClaimIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_jobs_State_AgentId_Priority_FairKey",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_ModelKey_Priority_FairKey",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_Priority_CreatedAt",
                table: "jobs");

            migrationBuilder.DropIndex(
                name: "IX_jobs_State_Priority_FairKey",
                table: "jobs");

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_AgentId_Priority_FairKey_CreatedAt_Id",
                table: "jobs",
                columns: new[] { "State", "AgentId", "Priority", "FairKey", "CreatedAt", "Id" },
                descending: new[] { false, false, true, false, false, false });

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
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_jobs_State_AgentId_Priority_FairKey_CreatedAt_Id",
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

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_AgentId_Priority_FairKey",
                table: "jobs",
                columns: new[] { "State", "AgentId", "Priority", "FairKey" },
                descending: new[] { false, false, true, false });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_ModelKey_Priority_FairKey",
                table: "jobs",
                columns: new[] { "State", "ModelKey", "Priority", "FairKey" },
                descending: new[] { false, false, true, false });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_Priority_CreatedAt",
                table: "jobs",
                columns: new[] { "State", "Priority", "CreatedAt" },
                descending: new[] { false, true, false });

            migrationBuilder.CreateIndex(
                name: "IX_jobs_State_Priority_FairKey",
                table: "jobs",
                columns: new[] { "State", "Priority", "FairKey" },
                descending: new[] { false, true, false });
        }
    }
}
