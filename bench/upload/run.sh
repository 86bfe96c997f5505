#!/usr/bin/env bash
# Upload benchmark: a 1 GiB model file through the API into the local store, against `cp` of the same file on the
# same disk, in one run; the server's resident memory growth during the upload; and the same upload into S3
# (s3rver on loopback, presigned PUT + complete). Writes its section of docs/benchmarks.md.
# Usage: bash bench/upload/run.sh [size-in-MiB]   (default 1024)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
source bench/section.sh
mib=${1:-1024}
port=${ATELIER_BENCH_PORT:-5097}
s3_port=${ATELIER_BENCH_S3_PORT:-45690}
work=$(mktemp -d "$root/bench/out.upload.XXXXXX")   # on the same disk as the local store
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

dotnet build src/Atelier -c Release -nologo -v quiet -clp:ErrorsOnly >/dev/null
head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/model.bin"
sha=$(sha256sum "$work/model.bin" | cut -d' ' -f1)
size=$(stat -c %s "$work/model.bin")

start_server() { # name extra-args...
  local name=$1; shift
  dotnet src/Atelier/bin/Release/net10.0/atelier.dll serve --Atelier:Server:Urls=http://127.0.0.1:$port \
    --Atelier:Server:DataDirectory="$work/$name" --Logging:LogLevel:Default=Warning "$@" >"$work/$name.log" 2>&1 &
  server=$!; pids+=("$server")
  for _ in $(seq 1 120); do grep -q 'atpk_' "$work/$name.log" 2>/dev/null && curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
  key=$(grep -ao 'atpk_[A-Za-z0-9]*' "$work/$name.log" | head -n 1)
}
api() { curl -fsS -X "$1" "http://127.0.0.1:$port$2" -H "Authorization: Bearer ${TOKEN:-$key}" -H "X-Operator-Id: bench" \
          -H 'Content-Type: application/json' ${4:+-H "X-Tenant-Id: $4"} ${3:+-d "$3"}; }
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
bool() { sed -n "s/.*\"$1\":\(true\|false\).*/\1/p"; }
setup_tenant() {
  TOKEN=""
  api POST /api/v1/accounts '{"uid":"bench"}' >/dev/null
  local tenant app
  tenant=$(api POST /api/v1/tenants '{"accountUid":"bench","name":"Bench"}' | field id)
  api POST "/api/v1/tenants/$tenant/init" >/dev/null
  api POST "/api/v1/tenants/$tenant/activate" >/dev/null
  app=$(api POST /api/v1/apps '{"name":"bench"}' "$tenant" | field id)
  TOKEN=$(api POST "/api/v1/apps/$app/tokens" '{"name":"bench","scopes":["admin"]}' "$tenant" | field secret)
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }

# 1. cp on the same disk: the bare baseline.
sync
t0=$(now); cp "$work/model.bin" "$work/copy.bin"; sync; t1=$(now)
cp_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
rm -f "$work/copy.bin"

# 2. Through the API into the local store, sampling the server's RSS all along.
start_server local
setup_tenant
upload=$(api POST /api/v1/uploads "{\"type\":\"checkpoint\",\"fileName\":\"big.ckpt\",\"size\":$size,\"sha256\":\"$sha\"}")
url=$(echo "$upload" | field url); upload_secret=$(echo "$upload" | field X-Upload-Secret)
base_rss=$(rss_kib "$server"); peak_rss=$base_rss
( while kill -0 "$server" 2>/dev/null; do r=$(rss_kib "$server" 2>/dev/null || echo 0); echo "$r"; sleep 0.05; done ) >"$work/rss.txt" &
sampler=$!; pids+=("$sampler")
t0=$(now); curl -fsS -T "$work/model.bin" "$url" -H "X-Upload-Secret: $upload_secret" -o "$work/put.json"; sync; t1=$(now)
kill "$sampler" 2>/dev/null || true
grep -q '"state":"stored"' "$work/put.json" || { echo "upload failed: $(cat "$work/put.json")" >&2; exit 1; }
local_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
peak_rss=$(sort -n "$work/rss.txt" | tail -n 1)
growth_mib=$(awk -v a="$base_rss" -v b="$peak_rss" 'BEGIN{printf "%.1f", (b-a)/1024}')
kill "$server"; wait "$server" 2>/dev/null || true

# 3. Into S3 (s3rver on loopback): presigned PUT straight to the store, then complete (one streamed read to hash, a server-side copy).
tools="$root/.tools/s3rver"
[ -x "$tools/node_modules/.bin/s3rver" ] || npm install --prefix "$tools" --no-audit --no-fund --silent s3rver@3.7.1 >/dev/null
sed -i "s/decodeURI(ctx.headers\['x-amz-copy-source'\])/decodeURIComponent(ctx.headers['x-amz-copy-source'])/" "$tools/node_modules/s3rver/lib/controllers/object.js"
mkdir -p "$work/s3data"
"$tools/node_modules/.bin/s3rver" -d "$work/s3data" -a 127.0.0.1 -p "$s3_port" --silent --configure-bucket atelier >"$work/s3.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null && break; sleep 0.1; done
start_server s3 --Atelier:Storage:Provider=s3 --Atelier:Storage:S3ServiceUrl=http://127.0.0.1:$s3_port \
  --Atelier:Storage:S3AccessKey=S3RVER --Atelier:Storage:S3SecretKey=S3RVER
setup_tenant
upload=$(api POST /api/v1/uploads "{\"type\":\"checkpoint\",\"fileName\":\"big.ckpt\",\"size\":$size,\"sha256\":\"$sha\"}")
url=$(echo "$upload" | field url); id=$(echo "$upload" | field id)
t0=$(now); curl -fsS -T "$work/model.bin" "$url" -o /dev/null; t1=$(now)
api POST "/api/v1/uploads/$id/complete" >"$work/complete.json"; t2=$(now)
grep -q '"state":"stored"' "$work/complete.json" || { echo "S3 upload failed: $(cat "$work/complete.json")" >&2; exit 1; }
s3_put_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
s3_complete_s=$(awk -v a="$t1" -v b="$t2" 'BEGIN{print b-a}')

mbps() { awk -v s="$1" -v m="$mib" 'BEGIN{printf "%.0f", m/s}'; }
ratio=$(awk -v c="$cp_s" -v l="$local_s" 'BEGIN{printf "%.0f", 100*c/l}')
speed_verdict=$([ "$ratio" -ge 50 ] && echo met || echo missed)
mem_verdict=$(awk -v g="$growth_mib" 'BEGIN{print (g < 64) ? "met" : "missed"}')
echo "cp ${cp_s}s ($(mbps "$cp_s") MiB/s) | API local ${local_s}s ($(mbps "$local_s") MiB/s) = ${ratio}% of cp | RSS +${growth_mib} MiB | S3 put ${s3_put_s}s + complete ${s3_complete_s}s"

section=$(cat <<MD
<!-- upload:begin -->
## Upload of a ${mib} MiB model file

Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, .NET $(dotnet --version), with
\`bash bench/upload/run.sh $mib\`: random bytes, declared size and SHA-256, \`curl -T\` to the upload URL on loopback; \`cp\`
of the same file on the same disk in the same run is the baseline. Times include \`sync\`. Server RSS sampled every 50 ms.

| path | time | speed |
|---|---:|---:|
| \`cp\` on the same disk (baseline) | ${cp_s} s | $(mbps "$cp_s") MiB/s |
| API → local store (stream to disk while hashing, inspect, rename into place) | ${local_s} s | $(mbps "$local_s") MiB/s |
| **local upload speed as a share of \`cp\`** | **${ratio}%** | target ≥ 50%: **$speed_verdict** |
| server resident memory growth during the local upload | +${growth_mib} MiB | target < 64 MiB: **$mem_verdict** |
| S3 (s3rver on loopback): presigned PUT, client straight to the store | ${s3_put_s} s | $(mbps "$s3_put_s") MiB/s |
| S3: \`complete\` (the server reads the object once to hash it, then a server-side copy) | ${s3_complete_s} s | $(mbps "$s3_complete_s") MiB/s |
<!-- upload:end -->
MD
)
write_section upload "$section"
