#!/usr/bin/env bash
# Job pipeline benchmark (issue 6): throughput and submit-to-lease latency on SQLite and on PostgreSQL (a private
# cluster on 127.0.0.1:55434, started and stopped here), the hot-model scheduling simulation, and the sync txt2img
# overhead, hot-model scheduling against FIFO with the real engine (hotmodels), the cost of webhooks on the same run, claim and submit latency against queue size, and resident memory. Writes its section of docs/benchmarks.md. Usage: bash bench/jobs/run.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
port=${ATELIER_BENCH_PG_PORT:-55434}
source bench/jobs/common.sh
pgdata=$(mktemp -d /tmp/atelier-bench-pg.XXXXXX)
trap 'pg_stop "$pgdata"; rm -rf "$pgdata"' EXIT
pg_start "$pgdata" "$port"

dotnet build bench/Atelier.Bench.Jobs -c Release -nologo -v quiet -clp:ErrorsOnly
bin=bench/Atelier.Bench.Jobs/bin/Release/net10.0/Atelier.Bench.Jobs.dll
dotnet "$bin" throughput sqlite
dotnet "$bin" throughput postgres "$pg"
dotnet "$bin" webhooks sqlite
dotnet "$bin" webhooks postgres "$pg"
dotnet "$bin" queuesize sqlite
dotnet "$bin" queuesize postgres "$pg"
dotnet "$bin" memory
dotnet "$bin" hotmodels
dotnet "$bin" simulate
dotnet "$bin" sync
dotnet "$bin" report "bash bench/jobs/run.sh"
