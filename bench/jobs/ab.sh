#!/usr/bin/env bash
# Job pipeline A/B (issue 18): the throughput bench of this tree against the same bench built from another commit, run
# side by side on this machine, alternating the two builds round by round (SQLite, then PostgreSQL on a private loopback
# cluster started and stopped here). Reports jobs/s, submit-to-lease p50/p99 and the bench process's CPU time per job
# (user + sys from /usr/bin/time over the whole run, divided by every job it pushed through, warm-up included; server,
# clients and worker loops are that one process). Writes its section of docs/benchmarks.md.
# BENCH_MODE=webhooks runs the bench with a webhook receiver (every job's messages delivered) and writes its own section.
# Usage: [BENCH_MODE=throughput|webhooks] bash bench/jobs/ab.sh <base-commit> [rounds] [jobs]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
source bench/section.sh
base=${1:?usage: bash bench/jobs/ab.sh <base-commit> [rounds] [jobs]}
rounds=${2:-2}
jobs=${3:-3000}
port=${ATELIER_BENCH_PG_PORT:-55434}
mode=${BENCH_MODE:-throughput}
case "$mode" in throughput) marker=jobs-ab; what="the throughput bench" ;; webhooks) marker=jobs-ab-webhooks; what="the throughput bench with webhooks (every job's messages signed and delivered to a receiver on loopback)" ;;
  *) echo "BENCH_MODE must be throughput or webhooks" >&2; exit 64 ;; esac
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing: apt-get install time" >&2; exit 1; }
source bench/jobs/common.sh

work=$(mktemp -d /tmp/atelier-ab.XXXXXX)
pgdata="$work/pg"
cleanup() {
  pg_stop "$pgdata"
  git worktree remove --force "$work/base" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
pg_start "$pgdata" "$port"

git worktree add --detach "$work/base" "$base" >/dev/null
base_sha=$(git -C "$work/base" rev-parse --short HEAD)
now_sha=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench || echo "+changes")
# The base is measured by this tree's bench program (BENCH_AB_BASE_BENCH=1: by its own), so that a change in how the
# bench times a round is not read as a change of the server.
[ "${BENCH_AB_BASE_BENCH:-0}" = 1 ] || cp bench/Atelier.Bench.Jobs/Program.cs "$work/base/bench/Atelier.Bench.Jobs/Program.cs"
echo "== building $base_sha and $now_sha"
dotnet build "$work/base/bench/Atelier.Bench.Jobs" -c Release -nologo -v quiet -clp:ErrorsOnly
dotnet build bench/Atelier.Bench.Jobs -c Release -nologo -v quiet -clp:ErrorsOnly
dll=bench/Atelier.Bench.Jobs/bin/Release/net10.0/Atelier.Bench.Jobs.dll

results="$work/results.tsv"
# CPU ticks of every PostgreSQL process: the server's backends (an exited one's time is in the postmaster's children's
# time, once reaped), the WAL writer, the checkpointer.
pg_ticks() { local t=0 p s; for p in $(pgrep -u postgres); do s=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0); t=$((t + ${s:-0})); done; echo "$t"; }
run() { # tree-label dir provider
  local out="$work/run.txt"
  local pg0 pgn lsn0; pg0=$(pg_ticks); pgn=$(pgrep -u postgres -c || true)
  lsn0=$(psql -h 127.0.0.1 -p "$port" -U atelier -d postgres -Atc "SELECT pg_current_wal_lsn()")
  if [ "$3" = postgres ]; then
    BENCH_JOBS=$jobs /usr/bin/time -f "cpu %U %S" dotnet "$2/$dll" "$mode" postgres "$pg" >"$out" 2>&1
  else
    BENCH_JOBS=$jobs /usr/bin/time -f "cpu %U %S" dotnet "$2/$dll" "$mode" sqlite >"$out" 2>&1
  fi
  parse_run "$out"
  # every job the process pushed through: the warm-up (400), latency (220) and untimed concurrent rounds (a bench from
  # before the "warm-up: N untimed jobs" line ran one round of BENCH_WARM, 3,000 unless set, and one from before that
  # round runs none, so its figure here reads low by that share) too
  local per w=$warm
  per=$(awk -v c="$cpu" -v n="$n" -v w="$w" 'BEGIN { printf "%.2f", 1000 * c / (n + 620 + w) }')
  # PostgreSQL's own CPU over the run, per job (its backends exit with the bench's connections; give the postmaster a moment to reap them)
  local db=- wal=-
  if [ "$3" = postgres ]; then
    wal=$(psql -h 127.0.0.1 -p "$port" -U atelier -d postgres -Atc \
      "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / 1024.0 / ($n + 620 + $w), 2)")
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ "$(pgrep -u postgres -c || true)" -le "$pgn" ] && break; sleep 0.5; done
    db=$(awk -v a="$pg0" -v b="$(pg_ticks)" -v hz="$(getconf CLK_TCK)" -v n="$n" -v w="$w" 'BEGIN { printf "%.2f", 1000 * (b - a) / hz / (n + 620 + w) }')
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$n" "$rate" "$p50" "$p99" "$cpu" "$per" "${lag:--}" "$db" "$wal" | tee -a "$results"
}

# The order swapped every other round, so neither build always runs second (after the other's checkpoints and autovacuum).
for r in $(seq 1 "$rounds"); do
  for provider in sqlite postgres; do
    if [ $((r % 2)) = 1 ]; then
      run "$base_sha" "$work/base" "$provider"
      run "$now_sha" "$root" "$provider"
    else
      run "$now_sha" "$root" "$provider"
      run "$base_sha" "$work/base" "$provider"
    fi
  done
done

table=$(awk -F'\t' -v base="$base_sha" -v hooks="$([ "$mode" = webhooks ] && echo 1 || echo 0)" '
  { key = $2; if ($1 == base) { b[key] = b[key] " " $4; bp[key] = bp[key] " " $5 "/" $6; bc[key] = bc[key] " " $8; bl[key] = bl[key] " " $9; bd[key] = bd[key] " " $10; bw[key] = bw[key] " " $11 } else { a[key] = a[key] " " $4; ap[key] = ap[key] " " $5 "/" $6; ac[key] = ac[key] " " $8; al[key] = al[key] " " $9; ad[key] = ad[key] " " $10; aw[key] = aw[key] " " $11 } }
  END {
    split("sqlite postgres", order, " ")
    for (i = 1; i <= 2; i++) { k = order[i]
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", (k == "sqlite" ? "SQLite (WAL)" : "PostgreSQL 15"), b[k], a[k], bp[k], ap[k], bc[k], ac[k], bd[k], ad[k], bw[k], aw[k]
      if (hooks == 1) printf " %s | %s |", bl[k], al[k]
      printf "\n" }
  }' "$results")
lagcols=""; lagsep=""
if [ "$mode" = webhooks ]; then
  lagcols=" $base_sha last message after the last job, s | $now_sha, s |"; lagsep="---|---|"
fi
section=$(cat <<MD
<!-- $marker:begin -->
## Job pipeline A/B (issue 18, $mode): $base_sha against $now_sha

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB), .NET $(dotnet --version),
with \`BENCH_MODE=$mode bash bench/jobs/ab.sh $base_sha $rounds $jobs\`: $what (16 submitters, 16 worker slots, a no-op engine, $jobs
jobs after 620 warm-up and latency jobs and untimed rounds of ${BENCH_WARM:-3000} of the same shape until one compiles fewer than 300 methods) built from both commits and run alternately (the order swapped every other round), $rounds rounds each, PostgreSQL 15
from Debian on loopback with fsync on. CPU is the bench process's user + sys time (server, clients and worker loops
in one process) divided by every job it ran; DB CPU, PostgreSQL's processes' (backends, WAL writer, checkpointer) over
the same run, per job (SQLite runs inside the bench process); WAL, the KiB of write-ahead log PostgreSQL wrote over the
run per job (the bench's own database created and migrated included: about the same on both sides), which the
machine's noise does not move. One figure per round, in order. (A bench built before BENCH_JOBS existed
runs its own count: 3,000 jobs on SQLite and 6,000 on PostgreSQL; rates and CPU per job stay comparable.) Both builds
run this tree's bench program (the base's own with BENCH_AB_BASE_BENCH=1): a round ends when its last job is complete
and, with webhooks, when its last message has arrived, having started once the warm-up's messages were all delivered.

| database | $base_sha jobs/s | $now_sha jobs/s | $base_sha submit→lease p50/p99 ms | $now_sha p50/p99 ms | $base_sha CPU ms/job | $now_sha CPU ms/job | $base_sha DB CPU ms/job | $now_sha DB CPU ms/job | $base_sha WAL KiB/job | $now_sha WAL KiB/job |$lagcols
|---|---|---|---|---|---|---|---|---|---|---|$lagsep
$table
<!-- $marker:end -->
MD
)
write_section "$marker" "$section"
