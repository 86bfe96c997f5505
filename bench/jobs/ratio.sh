#!/usr/bin/env bash
# Job pipeline: what webhooks cost (issue 18, target 4), measured side by side. The throughput bench of this tree without
# webhooks and with them (every job's completed message signed and posted to a receiver on loopback, a process of its
# own), run alternately (the order swapped every other round) on SQLite and on PostgreSQL (a private loopback cluster
# started and stopped here). Reports each run's jobs/s, the bench process's CPU per job over the timed round, the
# receiver's CPU per message, and the ratio of the means (target ≥ 0.9); then the floor under a message: bare HttpClient
# posts to the same receiver (the bench's posts mode). Writes its section of docs/benchmarks.md.
# Usage: bash bench/jobs/ratio.sh [rounds] [jobs]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
source bench/section.sh
rounds=${1:-2}
jobs=${2:-3000}
port=${ATELIER_BENCH_PG_PORT:-55434}
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing: apt-get install time" >&2; exit 1; }
source bench/jobs/common.sh
work=$(mktemp -d /tmp/atelier-ratio.XXXXXX)
pgdata="$work/pg"
trap 'pg_stop "$pgdata"; rm -rf "$work"' EXIT
chmod 755 "$work"
pg_start "$pgdata" "$port"
dotnet build bench/Atelier.Bench.Jobs -c Release -nologo -v quiet -clp:ErrorsOnly
dll=bench/Atelier.Bench.Jobs/bin/Release/net10.0/Atelier.Bench.Jobs.dll
sha=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bench || echo "+changes")

results="$work/results.tsv"
run() { # mode provider
  local out="$work/run.txt"
  if [ "$2" = postgres ]; then
    BENCH_JOBS=$jobs /usr/bin/time -f "cpu %U %S" dotnet "$dll" "$1" postgres "$pg" >"$out" 2>&1
  else
    BENCH_JOBS=$jobs /usr/bin/time -f "cpu %U %S" dotnet "$dll" "$1" sqlite >"$out" 2>&1
  fi
  parse_run "$out"
  # The bench process's CPU per job over the timed round (server, clients, worker loops), the receiver's per message
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$rate" "$cpujob" "$lag" "$rcpu" | tee -a "$results"
}

for r in $(seq 1 "$rounds"); do
  for provider in sqlite postgres; do
    if [ $((r % 2)) = 1 ]; then run throughput "$provider"; run webhooks "$provider"; else run webhooks "$provider"; run throughput "$provider"; fi
  done
done

# The floor under a message: bare posts of a message-sized body to the same receiver process, 64 at a time
posts=$(dotnet "$dll" posts | tail -n 1)
post_here=$(sed -nE 's/.*CPU ([0-9]+) µs\/post here.*/\1/p' <<<"$posts")
post_receiver=$(sed -nE 's/.*the receiver ([0-9]+) µs\/post.*/\1/p' <<<"$posts")

table=$(awk -F'\t' '
  { k = $2; if ($1 == "throughput") { p[k] = p[k] " " $3; pc[k] = pc[k] " " $4; ps[k] += $3; pcs[k] += $4; pn[k]++ } else { w[k] = w[k] " " $3; wc[k] = wc[k] " " $4; wl[k] = wl[k] " " $5; wr[k] = wr[k] " " $6; ws[k] += $3; wcs[k] += $4; wn[k]++ } }
  END { split("sqlite postgres", order, " ")
    for (i = 1; i <= 2; i++) { k = order[i]; ratio = (ws[k] / wn[k]) / (ps[k] / pn[k])
      printf "| %s | %s | %s | **×%.2f** (%s) | %s | %s | %.0f | %s | %s |\n", (k == "sqlite" ? "SQLite (WAL)" : "PostgreSQL 15"), p[k], w[k], ratio, (ratio >= 0.9 ? "met" : "**missed**"), pc[k], wc[k], wcs[k] / wn[k] - pcs[k] / pn[k], wr[k], wl[k] } }' "$results")
section=$(cat <<MD
<!-- jobs-webhook-ratio:begin -->
## What webhooks cost, side by side (issue 18, target 4)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB), .NET $(dotnet --version), at $sha,
with \`bash bench/jobs/ratio.sh $rounds $jobs\`: the throughput bench (16 submitters, 16 worker slots, a no-op engine, $jobs
jobs after 620 warm-up and latency jobs and untimed rounds of ${BENCH_WARM:-3000} until one compiles fewer than 300 methods) without webhooks and with them (every job asks for its
\`completed\` message, signed and posted to a receiver on loopback, a process of its own), run alternately, the order
swapped every other round, $rounds rounds each. A round with webhooks starts once the warm-up's messages are all delivered
and ends when its last message has arrived (a relay that trails the jobs does its work after them: a rate of the jobs
alone would leave that work out); a round ends when its last job is complete, not when the slots' long-polls run out.
CPU is the bench process's user + sys time per job over the timed round (server, the
submitters, the worker loops and, with webhooks, the relay; before 2026-12-01's fourth session the receiver too, and over
the whole run); the receiver's is its own process's per message. One figure per round, in order; the ratio is of the
means, and so is what a message costs the server (the CPU per job with webhooks less without).

| database | without webhooks, jobs/s | with webhooks, jobs/s | ratio (target ≥ 0.9) | CPU µs/job without | CPU µs/job with | a message's CPU in the server, µs | the receiver's CPU per message, µs | last message after the last job, s |
|---|---|---|---|---|---|---|---|---|
$table

The floor under a message, from the same build (\`dotnet $dll posts\`): bare HttpClient posts of a
message-sized body to the same receiver process, 64 at a time, no database, relay or signing: **$post_here µs** of CPU
per post in the posting process, $post_receiver µs in the receiver ($posts).
<!-- jobs-webhook-ratio:end -->
MD
)
write_section jobs-webhook-ratio "$section"
