#!/usr/bin/env bash
# Runs the whole test suite: the unit tests once, the integration tests on SQLite and on PostgreSQL, the browser tests
# of the web console once (on SQLite). Installs PostgreSQL and Chromium (Debian packages) when they are missing, starts a
# private PostgreSQL cluster on loopback for the run, and stops it afterwards. Ends with one line: "N passed, N failed". Exit status is non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

pg_port=${ATELIER_TEST_PG_PORT:-55433}
results=$(mktemp -d /tmp/atelier-test-results.XXXXXX)
pgdata=""
pgbin=""

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

find_pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

start_postgres() {
  pgbin=$(find_pgbin)
  if [ -z "$pgbin" ]; then
    echo "== installing PostgreSQL from Debian packages"
    if [ "$(id -u)" != 0 ]; then echo "PostgreSQL is missing and this is not root: install the 'postgresql' package" >&2; exit 1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    # The package starts a cluster of its own on 5432; the tests use a private one, so stop that.
    (pg_lsclusters -h 2>/dev/null | awk '{print $1, $2}' | while read -r v c; do pg_ctlcluster "$v" "$c" stop || true; done) || true
    pgbin=$(find_pgbin)
  fi
  pgdata=$(mktemp -d /tmp/atelier-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then chown postgres "$pgdata"; fi
  as_postgres "$pgbin/initdb" -D "$pgdata" -U atelier -A trust -E UTF8 >/dev/null
  as_postgres "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 \
    -o "-p $pg_port -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
  echo "== PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"
}

s3_port=${ATELIER_TEST_S3_PORT:-45679}
s3_pid=""
start_s3() {
  # The S3-compatible server for the S3 storage tests: s3rver from npm, on loopback, data in a temp folder.
  local tools="$root/.tools/s3rver"
  if [ ! -x "$tools/node_modules/.bin/s3rver" ]; then
    echo "== installing s3rver from npm"
    if ! command -v npm >/dev/null; then
      if [ "$(id -u)" = 0 ]; then
        echo "== installing Node.js and npm from Debian packages"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
      else
        echo "npm is missing: install Node.js (Debian packages nodejs npm)" >&2; exit 1
      fi
    fi
    npm install --prefix "$tools" --no-audit --no-fund --silent s3rver@3.7.1 >/dev/null
  fi
  # s3rver 3.7.1 reads x-amz-copy-source with decodeURI, which leaves the %2F between bucket and key that the AWS SDK
  # for .NET v4 sends (AWS S3 and MinIO accept it); decode it fully so that server-side copies work as on real S3.
  sed -i "s/decodeURI(ctx.headers\['x-amz-copy-source'\])/decodeURIComponent(ctx.headers['x-amz-copy-source'])/" \
    "$tools/node_modules/s3rver/lib/controllers/object.js"
  s3data=$(mktemp -d /tmp/atelier-s3.XXXXXX)
  "$tools/node_modules/.bin/s3rver" -d "$s3data" -a 127.0.0.1 -p "$s3_port" --silent --configure-bucket atelier >"$s3data.log" 2>&1 &
  s3_pid=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "== s3rver on 127.0.0.1:$s3_port"
}

stop_s3() {
  if [ -n "$s3_pid" ]; then kill "$s3_pid" 2>/dev/null || true; wait "$s3_pid" 2>/dev/null || true; rm -rf "$s3data" "$s3data.log"; fi
}

stop_postgres() {
  if [ -n "$pgdata" ] && [ -n "$pgbin" ]; then
    as_postgres "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$pgdata"
  fi
}
trap 'stop_postgres; stop_s3; rm -rf "$results"' EXIT

ensure_chromium() {
  # The browser tests drive Debian's Chromium through Playwright; Playwright's own browser download is never used.
  export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  if [ -x /usr/bin/chromium ]; then return; fi
  echo "== installing Chromium from Debian packages"
  if [ "$(id -u)" != 0 ]; then echo "Chromium is missing and this is not root: install the 'chromium' package (/usr/bin/chromium)" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}

ensure_chromium

start_postgres
start_s3
export ATELIER_TEST_S3="http://127.0.0.1:$s3_port"

echo "== building"
dotnet build Atelier.slnx -c Release -nologo -v quiet -clp:ErrorsOnly

status=0
crashed=0
run() { # name project [env... | --filter EXPR]
  local name=$1 project=$2; shift 2
  local filter=()
  if [ "${1:-}" = "--filter" ]; then filter=(--filter "$2"); shift 2; fi
  echo "== tests: $name"
  if ! env "$@" dotnet test "$project" -c Release --no-build -nologo -v quiet "${filter[@]}" \
    --logger "trx;LogFileName=$results/$name.trx" --logger "console;verbosity=minimal"; then
    status=1
    # A run that failed without a failed test in its results lost tests (the test host crashed): count it as one.
    if ! grep -Eq '<UnitTestResult [^>]*outcome="Failed"' "$results/$name.trx" 2>/dev/null; then
      echo "== $name: the test run failed without a failed test (the test host crashed or a test never reported)"
      crashed=$((crashed + 1))
    fi
  fi
}

run contracts tests/Atelier.Contracts.Tests
run core tests/Atelier.Core.Tests
run engine tests/Atelier.Engine.Tests
run worker tests/Atelier.Worker.Tests
run runtime tests/Atelier.Runtime.Tests
# The Live class needs a real cluster with Knative Serving (ATELIER_TEST_KUBECONFIG: a kube config file); without one it is
# left out of the run, so it is neither passed nor skipped here.
if [ -n "${ATELIER_TEST_KUBECONFIG:-}" ]; then
  run runtime-kubernetes tests/Atelier.Runtime.Kubernetes.Tests
else
  run runtime-kubernetes tests/Atelier.Runtime.Kubernetes.Tests --filter "Category!=Live"
fi
run server-sqlite tests/Atelier.Server.Tests ATELIER_TEST_DB=sqlite
run server-postgres tests/Atelier.Server.Tests ATELIER_TEST_DB=postgres \
  "ATELIER_TEST_PG=Host=127.0.0.1;Port=$pg_port;Username=atelier;Database=postgres"
# The web console in Chromium: once, on SQLite (the API underneath is covered on both databases above).
run browser tests/Atelier.Browser.Tests ATELIER_TEST_DB=sqlite

passed=0; failed=0
for f in "$results"/*.trx; do
  [ -f "$f" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$f" | head -n 1)
  p=$(echo "$counters" | sed -n 's/.* passed="\([0-9]*\)".*/\1/p'); f2=$(echo "$counters" | sed -n 's/.* failed="\([0-9]*\)".*/\1/p')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f2:-0}))
done
failed=$((failed + crashed))
if [ "$passed" = 0 ]; then status=1; fi
[ "$failed" = 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
