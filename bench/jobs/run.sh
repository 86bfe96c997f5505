#!/usr/bin/env bash
# Job pipeline benchmark (issue 6): throughput and submit-to-lease latency on SQLite and on PostgreSQL (a private
# cluster on 127.0.0.1:55434, started and stopped here), the hot-model scheduling simulation, and the sync txt2img
# overhead, hot-model scheduling against FIFO with the real engine (hotmodels), the cost of webhooks on the same run, claim and submit latency against queue size, and resident memory. Writes its section of docs/benchmarks.md. Usage: bash bench/jobs/run.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
port=${ATELIER_BENCH_PG_PORT:-55434}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$pgbin" ] || { echo "PostgreSQL is missing: bash scripts/test.sh installs it, or apt-get install postgresql" >&2; exit 1; }
pgdata=$(mktemp -d /tmp/atelier-bench-pg.XXXXXX)
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$pgdata"
as_postgres "$pgbin/initdb" -D "$pgdata" -U atelier -A trust -E UTF8 >/dev/null
as_postgres "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 \
  -o "-p $port -k $pgdata -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
trap 'as_postgres "$pgbin/pg_ctl" -D "$pgdata" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pgdata"' EXIT

dotnet build bench/Atelier.Bench.Jobs -c Release -nologo -v quiet -clp:ErrorsOnly
bin=bench/Atelier.Bench.Jobs/bin/Release/net10.0/Atelier.Bench.Jobs.dll
dotnet "$bin" throughput sqlite
dotnet "$bin" throughput postgres "Host=127.0.0.1;Port=$port;Username=atelier;Database=postgres"
dotnet "$bin" webhooks sqlite
dotnet "$bin" webhooks postgres "Host=127.0.0.1;Port=$port;Username=atelier;Database=postgres"
dotnet "$bin" queuesize sqlite
dotnet "$bin" queuesize postgres "Host=127.0.0.1;Port=$port;Username=atelier;Database=postgres"
dotnet "$bin" memory
dotnet "$bin" hotmodels
dotnet "$bin" simulate
dotnet "$bin" sync
dotnet "$bin" report "bash bench/jobs/run.sh"
