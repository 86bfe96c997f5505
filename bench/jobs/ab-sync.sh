#!/usr/bin/env bash
# Sync txt2img A/B (issue 18): the sync bench (POST /sdapi/v1/txt2img through the server and one worker, against the
# same request to `atelier engine` directly; built-in engine, demo model, 64×64, 8 steps) of this tree against the same
# bench built from another commit, alternating the two builds round by round on this machine. Reports each round's
# p50 of both paths and the difference (what the server and worker add). Writes its section of docs/benchmarks.md.
# BENCH_DB=postgres runs the server on PostgreSQL (a private loopback cluster started and stopped here) and writes a
# section of its own. Both builds run this tree's bench program (the base's own with BENCH_AB_BASE_BENCH=1).
# Usage: [BENCH_DB=sqlite|postgres] bash bench/jobs/ab-sync.sh <base-commit> [rounds]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
source bench/section.sh
base=${1:?usage: bash bench/jobs/ab-sync.sh <base-commit> [rounds]}
rounds=${2:-3}
db=${BENCH_DB:-sqlite}
case "$db" in sqlite) marker=jobs-ab-sync; dbname=SQLite ;; postgres) marker=jobs-ab-sync-postgres; dbname="PostgreSQL (a private cluster on loopback, fsync on)" ;;
  *) echo "BENCH_DB must be sqlite or postgres" >&2; exit 64 ;; esac
source bench/jobs/common.sh
work=$(mktemp -d /tmp/atelier-ab-sync.XXXXXX)
chmod 755 "$work"
cleanup() { pg_stop "$work/pg"; git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
args=(sync)
if [ "$db" = postgres ]; then
  pg_start "$work/pg" "${ATELIER_BENCH_PG_PORT:-55434}"
  args=(sync postgres "$pg")
fi
git worktree add --detach "$work/base" "$base" >/dev/null
[ "${BENCH_AB_BASE_BENCH:-0}" = 1 ] || cp bench/Atelier.Bench.Jobs/Program.cs "$work/base/bench/Atelier.Bench.Jobs/Program.cs"
base_sha=$(git -C "$work/base" rev-parse --short HEAD)
now_sha=$(git rev-parse --short HEAD)$([ -z "$(git status --porcelain -- src bench Directory.Build.props Directory.Packages.props)" ] || echo "+changes")
echo "== building $base_sha and $now_sha"
dotnet build "$work/base/bench/Atelier.Bench.Jobs" -c Release -nologo -v quiet -clp:ErrorsOnly
dotnet build bench/Atelier.Bench.Jobs -c Release -nologo -v quiet -clp:ErrorsOnly
dll=bench/Atelier.Bench.Jobs/bin/Release/net10.0/Atelier.Bench.Jobs.dll
results="$work/results.tsv"
run() { # label dir
  local line log="$work/$1-$r.log"
  dotnet "$2/$dll" "${args[@]}" >"$log" 2>&1 || { cat "$log" >&2; echo "the sync bench of $1 failed" >&2; exit 1; }
  line=$(grep -E '^direct p50' "$log" | tail -n 1)
  [ -n "$line" ] || { cat "$log" >&2; echo "the sync bench of $1 printed no result" >&2; exit 1; }
  # "direct p50 D ms, through server+worker p50 S ms; p99 d / s"
  local d s
  d=$(sed -E 's/^direct p50 ([0-9.]+) ms.*/\1/' <<<"$line")
  s=$(sed -E 's/.*server\+worker p50 ([0-9.]+) ms.*/\1/' <<<"$line")
  printf '%s\t%s\t%s\t%s\n' "$1" "$d" "$s" "$(awk -v d="$d" -v s="$s" 'BEGIN { printf "%.2f", s - d }')" | tee -a "$results"
}
[ "$base_sha" != "$now_sha" ] || { echo "the base is this tree: nothing to compare" >&2; exit 64; }
# The order alternates (ABBA …), so the machine's drift over the run falls on both builds alike.
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then run "$base_sha" "$work/base"; run "$now_sha" "$root"; else run "$now_sha" "$root"; run "$base_sha" "$work/base"; fi
done
row() { awk -F'\t' -v t="$1" -v c="$2" '$1 == t { printf " %s", $c }' "$results"; }
section=$(cat <<MD
<!-- $marker:begin -->
## Sync txt2img A/B (issue 18, $db): $base_sha against $now_sha

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB), .NET $(dotnet --version),
with \`$([ "$db" = sqlite ] || echo "BENCH_DB=$db ")bash bench/jobs/ab-sync.sh $base_sha $rounds\`: the sync bench (\`POST /sdapi/v1/txt2img\` through the server and one
worker, $dbname, built-in engine, demo model, 64×64, 8 steps, against the same request to \`atelier engine\` directly; 100
alternated requests per round after the warm-up) built from both commits and run alternately (the order swapped every other round), $rounds rounds each. p50 in
ms, one figure per round, in order; "added" is the server path's p50 less the engine's in the same round.

| build | engine alone p50 | server + worker p50 | added |
|---|---|---|---|
| $base_sha |$(row "$base_sha" 2) |$(row "$base_sha" 3) |$(row "$base_sha" 4) |
| $now_sha |$(row "$now_sha" 2) |$(row "$now_sha" 3) |$(row "$now_sha" 4) |
<!-- $marker:end -->
MD
)
write_section "$marker" "$section"
