#!/usr/bin/env bash
# API benchmark: an authenticated tenant read (GET /api/v1/apps/{id} with a tenant admin token, SQLite) against a bare
# endpoint of the same server (GET /healthz), side by side in one run with wrk on loopback. Writes docs/benchmarks.md.
# Usage: bash bench/api/run.sh [seconds-per-round]   (needs wrk: apt-get install wrk)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
source bench/section.sh
secs=${1:-10}
port=${ATELIER_BENCH_PORT:-5099}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then echo "port $port is taken: set ATELIER_BENCH_PORT" >&2; exit 1; fi
work=$(mktemp -d /tmp/atelier-bench.XXXXXX)
dotnet build src/Atelier -c Release -nologo -v quiet -clp:ErrorsOnly
# The rate limits stay in the path but never refuse: wrk's connections on one token are the whole load.
dotnet src/Atelier/bin/Release/net10.0/atelier.dll serve --Atelier:Server:Urls=http://127.0.0.1:$port \
  --Atelier:Server:DataDirectory="$work/data" --Logging:LogLevel:Default=Warning \
  --Atelier:RateLimits:PerCredential:TokenLimit=1000000000 --Atelier:RateLimits:PerCredential:TokensPerPeriod=1000000000 \
  --Atelier:RateLimits:PerTenant:TokenLimit=1000000000 --Atelier:RateLimits:PerTenant:TokensPerPeriod=1000000000 >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 120); do grep -q 'atpk_' "$work/server.log" 2>/dev/null && curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
key=$(grep -ao 'atpk_[A-Za-z0-9]*' "$work/server.log" | head -n 1)

api() { # method path [body] [tenant]
  curl -fsS -X "$1" "http://127.0.0.1:$port$2" -H "Authorization: Bearer ${TOKEN:-$key}" -H "X-Operator-Id: bench" \
    -H 'Content-Type: application/json' ${4:+-H "X-Tenant-Id: $4"} ${3:+-d "$3"}
}
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
api POST /api/v1/accounts '{"uid":"bench"}' >/dev/null
tenant=$(api POST /api/v1/tenants '{"accountUid":"bench","name":"Bench"}' | field id)
api POST "/api/v1/tenants/$tenant/init" >/dev/null
api POST "/api/v1/tenants/$tenant/activate" >/dev/null
app=$(api POST /api/v1/apps '{"name":"bench"}' "$tenant" | field id)
token=$(api POST "/api/v1/apps/$app/tokens" '{"name":"bench","scopes":["admin"]}' "$tenant" | field secret)
curl -fsS "http://127.0.0.1:$port/api/v1/apps/$app" -H "Authorization: Bearer $token" >/dev/null

run_wrk() { # name url [header]
  wrk -t1 -c16 -d"${secs}s" --latency ${3:+-H "$3"} "$2" >"$work/$1.txt"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$1.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/$1.txt")
  echo "$rps $p99"
}
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v } else { sub(/s$/, "", v); print v*1000 } }'; }

# The JIT's tiers take about 15 s of this load to settle on the longer paths (measured: the authenticated read goes
# 3k, 4k, 11k, 13k requests/s in consecutive 8 s runs), so each endpoint is warmed for the same fixed number of runs.
echo "== warm-up"
timed_secs=$secs
secs=$(( secs < 5 ? 5 : secs )) # at least 5 s a warm-up run, whatever the rounds' length
for w in $(seq 1 "${BENCH_WARM_RUNS:-4}"); do
  run_wrk "warm$w-bare" "http://127.0.0.1:$port/healthz" >/dev/null
  run_wrk "warm$w-auth" "http://127.0.0.1:$port/api/v1/apps/$app" "Authorization: Bearer $token" >/dev/null
  run_wrk "warm$w-me" "http://127.0.0.1:$port/api/v1/me" "Authorization: Bearer $token" >/dev/null
done
warm_secs=$secs
secs=$timed_secs
bare_rps=(); auth_rps=(); bare_p99=(); auth_p99=(); me_rps=(); me_p99=()
for round in 1 2 3; do
  read -r r p < <(run_wrk "bare$round" "http://127.0.0.1:$port/healthz"); bare_rps+=("$r"); bare_p99+=("$(to_ms "$p")")
  read -r r p < <(run_wrk "auth$round" "http://127.0.0.1:$port/api/v1/apps/$app" "Authorization: Bearer $token"); auth_rps+=("$r"); auth_p99+=("$(to_ms "$p")")
  read -r r p < <(run_wrk "me$round" "http://127.0.0.1:$port/api/v1/me" "Authorization: Bearer $token"); me_rps+=("$r"); me_p99+=("$(to_ms "$p")")
  echo "round $round: bare ${bare_rps[-1]} req/s p99 ${bare_p99[-1]} ms | authenticated ${auth_rps[-1]} req/s p99 ${auth_p99[-1]} ms"
done
grep -q "Non-2xx" "$work"/auth*.txt "$work"/me*.txt && { echo "authenticated run had non-2xx answers" >&2; exit 1; }
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
b=$(median "${bare_rps[@]}"); a=$(median "${auth_rps[@]}")
bp=$(median "${bare_p99[@]}"); ap=$(median "${auth_p99[@]}")
m=$(median "${me_rps[@]}"); mp=$(median "${me_p99[@]}")
me_ratio=$(awk -v a="$m" -v b="$b" 'BEGIN { printf "%.0f", 100*a/b }')
ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.0f", 100*a/b }')
verdict=$([ "$ratio" -ge 50 ] && echo "met" || echo "missed")
echo "median: bare $b req/s, authenticated $a req/s = $ratio% (target 50%: $verdict)"

section=$(cat <<MD
<!-- api:begin -->
## API: authenticated tenant read versus a bare endpoint

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB), .NET $(dotnet --version), SQLite,
with \`bash bench/api/run.sh $secs\`: wrk 1 thread, 16 connections, ${secs} s per run, three rounds alternating the three
endpoints on the same server process after ${BENCH_WARM_RUNS:-4} untimed runs of ${warm_secs} s of each (the JIT settling); medians of the three rounds. wrk runs on the same $(nproc) cores as the server.

| endpoint | requests/s | p99 latency |
|---|---:|---:|
| bare: \`GET /healthz\` | $b | $bp ms |
| authenticated: \`GET /api/v1/apps/{id}\` with a tenant admin token (token check, tenant check, one database read) | $a | $ap ms |
| **ratio, authenticated read / bare** | **$ratio%** | |
| authentication alone: \`GET /api/v1/me\` (token check, tenant check, no data read) | $m ($me_ratio%) | $mp ms |

Target: the authenticated read reaches at least 50% of the bare endpoint's throughput — **$verdict**.
<!-- api:end -->
MD
)
write_section api "$section"
