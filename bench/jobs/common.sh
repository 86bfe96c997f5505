# Sourced by bench/jobs/ab.sh, ratio.sh and run.sh: a private PostgreSQL cluster for a bench run, and what one run of the
# jobs bench printed. Each script keeps its own trap; pg_stop is safe to call when nothing was started.

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# pg_start DIR PORT: a fresh cluster in DIR (made owned by postgres) on 127.0.0.1:PORT; sets pgbin and pg (the
# connection string the bench takes).
pg_start() {
  local dir=$1 port=$2
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$pgbin" ] || { echo "PostgreSQL is missing: bash scripts/test.sh installs it, or apt-get install postgresql" >&2; return 1; }
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_postgres "$pgbin/initdb" -D "$dir" -U atelier -A trust -E UTF8 >/dev/null
  as_postgres "$pgbin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
  pg="Host=127.0.0.1;Port=$port;Username=atelier;Database=postgres"
}

# pg_stop DIR: stops the cluster pg_start made there, if any.
pg_stop() { [ -n "${pgbin:-}" ] && as_postgres "$pgbin/pg_ctl" -D "$1" -m fast stop >/dev/null 2>&1 || true; }

# parse_run FILE: from the output of one run of the throughput/webhooks bench (under /usr/bin/time -f "cpu %U %S"),
# sets n (timed jobs), rate (jobs/s), p50 and p99 (submit→lease, ms), cpu (the run's user + sys seconds), warm (every
# untimed job before the timed round: the bench's "warm-up: N" line, BENCH_WARM or 3,000 for a bench from before it;
# the 620 warm-up and latency jobs are not in it), lag (webhooks: seconds from the last job to the last message, or -),
# cpujob (the bench process's CPU per job over the timed round, µs), rcpu (webhooks: the receiver process's CPU per
# message over the timed round, µs, or - when it ran in the bench's process).
parse_run() {
  local line
  line=$(grep -E "jobs/s" "$1" | tail -n 1)
  # "<provider>[ with webhooks]: N jobs[ and their messages] in S s = R jobs/s (target T); submit→lease p50 A ms, p99 B ms; …"
  n=$(sed -E 's/^[a-z]+( with webhooks)?: ([0-9]+) jobs.*/\2/' <<<"$line")
  rate=$(sed -E 's/.* = ([0-9]+) jobs\/s.*/\1/' <<<"$line")
  p50=$(sed -E 's/.*p50 ([0-9.]+) ms.*/\1/' <<<"$line")
  p99=$(sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$line")
  cpu=$(awk '/^cpu / {print $2 + $3}' "$1")
  warm=$(sed -nE 's/.*warm-up: ([0-9]+) untimed jobs.*/\1/p' "$1" | tail -n 1)
  warm=${warm:-${BENCH_WARM:-3000}}
  lag=$(sed -nE 's/.*the last ([0-9.]+) s after the last job.*/\1/p' "$1" | tail -n 1)
  lag=${lag:--}
  cpujob=$(sed -nE 's/.*CPU ([0-9]+) µs\/job.*/\1/p' <<<"$line")
  rcpu=$(sed -nE 's/.*the receiver \(a process of its own\) ([0-9]+) µs CPU\/message.*/\1/p' "$1" | tail -n 1)
  rcpu=${rcpu:--}
}
