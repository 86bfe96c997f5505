using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class StudioPreviews : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "FunctionTemplateId",
                table: "resource_configs",
                type: "TEXT",
                maxLength: 256,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "InstanceParametersJson",
                table: "resource_configs",
                type: "TEXT",
                maxLength: 256,
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "PreviewStep",
                table: "jobs",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "job_previews",
                columns: table => new
                {
                    JobId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Attempt = table.Column<int>(type: "INTEGER", nullable: false),
                    Step = table.Column<int>(type: "INTEGER", nullable: false),
                    Png = table.Column<byte[]>(type: "BLOB", maxLength: 262144, nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_job_previews", x => x.JobId);
                    table.ForeignKey(
                        name: "FK_job_previews_jobs_JobId",
                        column: x => x.JobId,
                        principalTable: "jobs",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "job_previews");

            migrationBuilder.DropColumn(
                name: "FunctionTemplateId",
                table: "resource_configs");

            migrationBuilder.DropColumn(
                name: "InstanceParametersJson",
                table: "resource_configs");

            migrationBuilder.DropColumn(
                name: "PreviewStep",
                table: "jobs");
        }
    }
}
