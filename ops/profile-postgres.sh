#!/usr/bin/env bash
# A private PostgreSQL for profiling the benchmarks by statement: the machine's settings plus
# pg_stat_statements, on 127.0.0.1:${PORT:-5440}, data under ${DIR:-/tmp/outdial-pgprof}.
#   ops/profile-postgres.sh start   # prints the DATABASE_URL to give a bench
#   ops/profile-postgres.sh top     # statements by total execution time, then resets them
#   ops/profile-postgres.sh stop
# Example (docs/benchmarks/dispatch.md, 2026-12-03 morning):
#   source ops/env.sh && DATABASE_URL=$(ops/profile-postgres.sh start) \
#     OUTDIAL_BENCH_WORKERS=1 OUTDIAL_BENCH_BURST=0 cargo bench -p outdial-cli --bench dispatch
#   ops/profile-postgres.sh top
set -euo pipefail
port=${PORT:-5440}
dir=${DIR:-/tmp/outdial-pgprof}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "$0: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -c "$*"; else sh -c "$*"; fi; }
psql_() { psql -X -q -U postgres -h 127.0.0.1 -p "$port" "$@"; }

case "${1:-}" in
start)
  if ! pg_isready -q -h 127.0.0.1 -p "$port"; then
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    [ -f "$dir/data/PG_VERSION" ] || as_pg "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
    as_pg "$bin/pg_ctl -D $dir/data -l $dir/log -w start -o \"-p $port -c listen_addresses=127.0.0.1 \
      -c unix_socket_directories=$dir -c autovacuum=off -c max_connections=100 \
      -c shared_buffers=128MB -c max_wal_size=1GB \
      -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all\"" >/dev/null
    psql_ -d postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
    psql_ -d postgres -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1
  fi
  psql_ -d postgres -c "SELECT pg_stat_statements_reset()" >/dev/null
  echo "postgres://postgres@127.0.0.1:$port/test"
  ;;
top)
  psql_ -d postgres -A -F ' | ' -c "SELECT calls, round(total_exec_time) AS ms, rows,
      left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS statement
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT ${LIMIT:-20}"
  psql_ -d postgres -c "SELECT pg_stat_statements_reset()" >/dev/null
  ;;
stop)
  as_pg "$bin/pg_ctl -D $dir/data -m fast stop" >/dev/null
  ;;
*)
  echo "usage: $0 start|top|stop" >&2
  exit 2
  ;;
esac
