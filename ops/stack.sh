#!/usr/bin/env bash
# Make Redis and PostgreSQL available on loopback for outdial (local dev/test).
#
# Idempotent: whatever already answers is used as is; otherwise the service is
# installed (apt-get, Debian) and started without systemd. Progress goes to
# stderr; stdout is exactly two lines, so `eval "$(ops/stack.sh)"` works:
#   OUTDIAL_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test
#   OUTDIAL_REDIS_URL=redis://127.0.0.1:6379
#
# Environment:
#   OUTDIAL_DATABASE_URL, OUTDIAL_REDIS_URL  use these services instead (each
#                                            must answer, or the script fails)
#   OUTDIAL_STACK_REDIS_PORT (6379), OUTDIAL_STACK_PG_PORT (5432)
#                                            loopback ports to use / start on
#   OUTDIAL_STACK_DIR                        Redis log/pid/work dir
#   OUTDIAL_STACK_BROWSER=1                  also make Debian's chromium and
#                                            chromedriver available (the admin
#                                            page test; ops/test.sh sets it)
set -euo pipefail

HOST=127.0.0.1
REDIS_PORT=${OUTDIAL_STACK_REDIS_PORT:-6379}
PG_PORT=${OUTDIAL_STACK_PG_PORT:-5432}
STATE_DIR=${OUTDIAL_STACK_DIR:-${TMPDIR:-/tmp}/outdial-stack-$(id -u)}

log() { echo "stack: $*" >&2; }
die() { log "error: $*"; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# Run a command as root: directly, through sudo, or not at all.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif have sudo; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

apt_install() {
  have apt-get || die "apt-get not found; install $* by hand"
  log "installing $* with apt-get"
  as_root apt-get update >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2
}

# wait_for WHAT CMD...: retry CMD every 0.5 s for at most 30 s.
wait_for() {
  local what=$1 _
  shift
  for _ in $(seq 60); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "$what did not become ready within 30 s"
}

# ---------------------------------------------------------------- Redis

redis_ping() { [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

ensure_redis() {
  if [ -n "${OUTDIAL_REDIS_URL:-}" ]; then
    have redis-cli || apt_install redis-tools
    [ "$(redis-cli -u "$OUTDIAL_REDIS_URL" ping 2>/dev/null)" = PONG ] ||
      die "OUTDIAL_REDIS_URL=$OUTDIAL_REDIS_URL does not answer PING"
    log "redis: using OUTDIAL_REDIS_URL"
    REDIS_URL=$OUTDIAL_REDIS_URL
    return
  fi
  REDIS_URL="redis://$HOST:$REDIS_PORT"
  if redis_ping; then
    log "redis: already answering on $HOST:$REDIS_PORT"
    return
  fi
  if ! have redis-server || ! have redis-cli; then
    apt_install redis-server redis-tools
  fi
  redis_ping && return # the package may have started a service itself
  mkdir -p "$STATE_DIR"
  local logfile="$STATE_DIR/redis-$REDIS_PORT.log"
  log "redis: starting on $HOST:$REDIS_PORT (log: $logfile)"
  # No persistence: this is a throwaway dev/test instance. "-::1" binds IPv6
  # loopback only if available.
  redis-server --daemonize yes --bind "$HOST" -::1 --port "$REDIS_PORT" \
    --save "" --appendonly no --dir "$STATE_DIR" --logfile "$logfile" \
    --pidfile "$STATE_DIR/redis-$REDIS_PORT.pid" >&2
  wait_for "redis on $HOST:$REDIS_PORT (see $logfile)" redis_ping
}

# ---------------------------------------------------------------- PostgreSQL

pg_ready() { pg_isready -q -h "$HOST" -p "$PG_PORT"; }
# psql as user postgres over loopback TCP, never prompting for a password.
pg_sql() { psql -w -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -tAc "$1"; }

# Start (creating if needed) the local cluster that owns $PG_PORT.
start_pg_cluster() {
  if ! have pg_ctlcluster || ! have pg_lsclusters; then
    apt_install postgresql postgresql-client
  fi
  pg_ready && return # the package may have started the cluster itself

  local ver name status
  read -r ver name status < <(pg_lsclusters --no-header |
    awk -v p="$PG_PORT" '$3 == p { print $1, $2, $4; exit }') || true
  if [ -z "${ver:-}" ]; then
    # No cluster on this port: create one with the newest installed server.
    ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n1) || true
    [ -n "$ver" ] || die "no PostgreSQL server found under /usr/lib/postgresql"
    name=main
    [ "$PG_PORT" = 5432 ] || name="outdial$PG_PORT"
    log "postgres: creating cluster $ver/$name on port $PG_PORT"
    as_root pg_createcluster --port "$PG_PORT" "$ver" "$name" >&2
  fi
  # Debian's default listen_addresses is 'localhost' (127.0.0.1 and ::1).
  if [ "${status:-down}" != online ]; then
    log "postgres: starting cluster $ver/$name"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start >&2
  fi
  wait_for "postgres on $HOST:$PG_PORT" pg_ready

  if ! pg_sql 'select 1' >/dev/null 2>&1; then
    # LOCAL DEV/TEST STACK ONLY: let anyone on loopback connect as any user
    # without a password. Never do this on a shared or production server.
    local hba="/etc/postgresql/$ver/$name/pg_hba.conf"
    log "postgres: allowing passwordless loopback connections in $hba"
    as_root sed -i '1i # outdial ops/stack.sh: local dev/test stack only\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload >&2
    wait_for "passwordless login as postgres on $HOST:$PG_PORT" pg_sql 'select 1'
  fi
}

ensure_postgres() {
  if [ -n "${OUTDIAL_DATABASE_URL:-}" ]; then
    have psql || apt_install postgresql-client
    psql -w "$OUTDIAL_DATABASE_URL" -tAc 'select 1' >/dev/null ||
      die "cannot connect to OUTDIAL_DATABASE_URL=$OUTDIAL_DATABASE_URL"
    log "postgres: using OUTDIAL_DATABASE_URL"
    DATABASE_URL=$OUTDIAL_DATABASE_URL
    return
  fi
  DATABASE_URL="postgres://postgres@$HOST:$PG_PORT/test"
  if ! have pg_isready || ! have psql; then
    apt_install postgresql-client
  fi
  if pg_ready; then
    log "postgres: already answering on $HOST:$PG_PORT"
  else
    start_pg_cluster
  fi
  pg_sql 'select 1' >/dev/null ||
    die "cannot log in as postgres on $HOST:$PG_PORT without a password; set OUTDIAL_DATABASE_URL"
  if [ "$(pg_sql "select 1 from pg_database where datname = 'test'")" != 1 ]; then
    log "postgres: creating database test"
    pg_sql 'create database test' >/dev/null
  fi
}

# ---------------------------------------------------------------- Chromium

ensure_browser() {
  if have chromium && have chromedriver; then
    log "chromium: $(command -v chromium), chromedriver: $(command -v chromedriver)"
    return
  fi
  apt_install chromium chromium-driver
}

ensure_redis
ensure_postgres
if [ "${OUTDIAL_STACK_BROWSER:-0}" = 1 ]; then
  ensure_browser
fi
# %q keeps the plain URLs unchanged and makes odd ones safe for eval.
printf 'OUTDIAL_DATABASE_URL=%q\nOUTDIAL_REDIS_URL=%q\n' "$DATABASE_URL" "$REDIS_URL"
