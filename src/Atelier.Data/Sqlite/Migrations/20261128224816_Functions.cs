using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Atelier.Data.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class Functions : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "function_services",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Description = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_function_services", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "function_templates",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Description = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    Engine = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Image = table.Column<string>(type: "TEXT", maxLength: 1024, nullable: true),
                    Command = table.Column<string>(type: "TEXT", maxLength: 1024, nullable: true),
                    ArgsJson = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: false),
                    EnvironmentJson = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: false),
                    Port = table.Column<int>(type: "INTEGER", nullable: false),
                    HealthPath = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Cpu = table.Column<double>(type: "REAL", nullable: false),
                    MemoryMb = table.Column<int>(type: "INTEGER", nullable: false),
                    Gpu = table.Column<int>(type: "INTEGER", nullable: false),
                    InstanceConcurrency = table.Column<int>(type: "INTEGER", nullable: false),
                    TimeoutSeconds = table.Column<int>(type: "INTEGER", nullable: false),
                    ParametersSchemaJson = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: false),
                    BuiltIn = table.Column<bool>(type: "INTEGER", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_function_templates", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "kube_configs",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    ConfigCipher = table.Column<byte[]>(type: "BLOB", maxLength: 262144, nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_kube_configs", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "functions",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    ServiceId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Description = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    Region = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TemplateId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    InstanceParametersJson = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: true),
                    ConfigJson = table.Column<string>(type: "TEXT", maxLength: 131072, nullable: false),
                    State = table.Column<string>(type: "TEXT", maxLength: 16, nullable: false),
                    StateReason = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    Generation = table.Column<long>(type: "INTEGER", nullable: false),
                    AppliedGeneration = table.Column<long>(type: "INTEGER", nullable: false),
                    ManualInstances = table.Column<int>(type: "INTEGER", nullable: false),
                    ProvisionedInstances = table.Column<int>(type: "INTEGER", nullable: true),
                    ReservedConcurrency = table.Column<int>(type: "INTEGER", nullable: true),
                    AsyncConfigJson = table.Column<string>(type: "TEXT", maxLength: 8192, nullable: true),
                    NextVersion = table.Column<int>(type: "INTEGER", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_functions", x => x.Id);
                    table.ForeignKey(
                        name: "FK_functions_function_services_ServiceId",
                        column: x => x.ServiceId,
                        principalTable: "function_services",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "regions",
                columns: table => new
                {
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Backend = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    KubeConfigId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    Namespace = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_regions", x => x.Name);
                    table.ForeignKey(
                        name: "FK_regions_kube_configs_KubeConfigId",
                        column: x => x.KubeConfigId,
                        principalTable: "kube_configs",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Restrict);
                });

            migrationBuilder.CreateTable(
                name: "async_invocations",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    FunctionId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Qualifier = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    Method = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Path = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: false),
                    ContentType = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    RequestBody = table.Column<byte[]>(type: "BLOB", maxLength: 6291456, nullable: false),
                    State = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Attempts = table.Column<int>(type: "INTEGER", nullable: false),
                    StatusCode = table.Column<int>(type: "INTEGER", nullable: true),
                    ResultKey = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    ResultContentType = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    Error = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    Destination = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    NextAttemptAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    LeaseUntil = table.Column<DateTime>(type: "TEXT", nullable: true),
                    FinishedAt = table.Column<DateTime>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_async_invocations", x => x.Id);
                    table.ForeignKey(
                        name: "FK_async_invocations_functions_FunctionId",
                        column: x => x.FunctionId,
                        principalTable: "functions",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "custom_domains",
                columns: table => new
                {
                    Host = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    FunctionId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Qualifier = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    CertificatePem = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: false),
                    PrivateKeyCipher = table.Column<byte[]>(type: "BLOB", maxLength: 65536, nullable: false),
                    CertificateNotAfter = table.Column<DateTime>(type: "TEXT", nullable: false),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_custom_domains", x => x.Host);
                    table.ForeignKey(
                        name: "FK_custom_domains_functions_FunctionId",
                        column: x => x.FunctionId,
                        principalTable: "functions",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "function_aliases",
                columns: table => new
                {
                    FunctionId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Version = table.Column<int>(type: "INTEGER", nullable: false),
                    AdditionalVersion = table.Column<int>(type: "INTEGER", nullable: true),
                    AdditionalWeight = table.Column<double>(type: "REAL", nullable: false),
                    Description = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false),
                    UpdatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_function_aliases", x => new { x.FunctionId, x.Name });
                    table.ForeignKey(
                        name: "FK_function_aliases_functions_FunctionId",
                        column: x => x.FunctionId,
                        principalTable: "functions",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "function_triggers",
                columns: table => new
                {
                    FunctionId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Kind = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Qualifier = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    Anonymous = table.Column<bool>(type: "INTEGER", nullable: false),
                    MethodsJson = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Cron = table.Column<string>(type: "TEXT", maxLength: 256, nullable: true),
                    Payload = table.Column<string>(type: "TEXT", maxLength: 65536, nullable: true),
                    Enabled = table.Column<bool>(type: "INTEGER", nullable: false),
                    NextRunAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    LastRunAt = table.Column<DateTime>(type: "TEXT", nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_function_triggers", x => new { x.FunctionId, x.Name });
                    table.ForeignKey(
                        name: "FK_function_triggers_functions_FunctionId",
                        column: x => x.FunctionId,
                        principalTable: "functions",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "function_versions",
                columns: table => new
                {
                    FunctionId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    Number = table.Column<int>(type: "INTEGER", nullable: false),
                    TenantId = table.Column<string>(type: "TEXT", maxLength: 256, nullable: false),
                    ConfigJson = table.Column<string>(type: "TEXT", maxLength: 131072, nullable: false),
                    Description = table.Column<string>(type: "TEXT", maxLength: 2048, nullable: true),
                    CreatedAt = table.Column<DateTime>(type: "TEXT", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_function_versions", x => new { x.FunctionId, x.Number });
                    table.ForeignKey(
                        name: "FK_function_versions_functions_FunctionId",
                        column: x => x.FunctionId,
                        principalTable: "functions",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_async_invocations_FunctionId_CreatedAt",
                table: "async_invocations",
                columns: new[] { "FunctionId", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_async_invocations_State_NextAttemptAt",
                table: "async_invocations",
                columns: new[] { "State", "NextAttemptAt" });

            migrationBuilder.CreateIndex(
                name: "IX_custom_domains_FunctionId",
                table: "custom_domains",
                column: "FunctionId");

            migrationBuilder.CreateIndex(
                name: "IX_function_services_TenantId_Name",
                table: "function_services",
                columns: new[] { "TenantId", "Name" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_function_templates_Name",
                table: "function_templates",
                column: "Name",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_function_triggers_Kind_NextRunAt",
                table: "function_triggers",
                columns: new[] { "Kind", "NextRunAt" });

            migrationBuilder.CreateIndex(
                name: "IX_functions_ServiceId_Name",
                table: "functions",
                columns: new[] { "ServiceId", "Name" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_functions_TenantId",
                table: "functions",
                column: "TenantId");

            migrationBuilder.CreateIndex(
                name: "IX_kube_configs_Name",
                table: "kube_configs",
                column: "Name",
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_regions_KubeConfigId",
                table: "regions",
                column: "KubeConfigId");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "async_invocations");

            migrationBuilder.DropTable(
                name: "custom_domains");

            migrationBuilder.DropTable(
                name: "function_aliases");

            migrationBuilder.DropTable(
                name: "function_templates");

            migrationBuilder.DropTable(
                name: "function_triggers");

            migrationBuilder.DropTable(
                name: "function_versions");

            migrationBuilder.DropTable(
                name: "regions");

            migrationBuilder.DropTable(
                name: "functions");

            migrationBuilder.DropTable(
                name: "kube_configs");

            migrationBuilder.DropTable(
                name: "function_services");
        }
    }
}
