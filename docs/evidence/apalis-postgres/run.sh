#!/usr/bin/env bash
# Crash test of apalis-postgres 1.0.0 for outdial bulk imports.
#
#   ./run.sh                 # all scenarios
#   ./run.sh kill-restart    # one scenario (see the case list below)
#
# Each scenario gets its own scratch database apalis_probe_<pid>_<n> on 127.0.0.1:5432
# (user postgres), which is dropped at the end. Output goes to stdout and output/<scenario>.txt.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
TARGET=/tmp/apalis-probe-target
BIN=$TARGET/release/apalis-postgres-crash-probe
PSQL=(psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1)
N_ROWS=${N_ROWS:-5000}
WAIT_S=${WAIT_S:-120}
mkdir -p "$HERE/output"

if [ ! -x "$BIN" ] || [ "$HERE/src/main.rs" -nt "$BIN" ]; then
  (cd "$HERE" && env -u DATABASE_URL SQLX_OFFLINE=true cargo build --release --locked --target-dir "$TARGET") || exit 1
fi

ts() { date -u +%H:%M:%S.%3N; }
say() { echo "[$(ts)] run.sh: $*" >>"$LOG"; }
PIDS=()
start_worker() { # NAME [env...]
  local name=$1; shift
  env "$@" "$BIN" work "$name" >>"$LOG" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
  say "started worker $name pid=$! $*"
}
kill9() { # NAME
  local v="PID_$1"; local pid=${!v}
  kill -9 "$pid" && say "kill -9 worker $1 pid=$pid"
  wait "$pid" 2>/dev/null
}
holder() { "${PSQL[@]}" -d "$DB" -tAc "SELECT coalesce(lock_by,'') FROM apalis.jobs"; }
next_row() { "${PSQL[@]}" -d "$DB" -tAc "SELECT next_row FROM import_progress WHERE job=1"; }

SEQ=0
scenario() { # NAME DESCRIPTION
  SCEN=$1; SEQ=$((SEQ + 1))
  DB=apalis_probe_$$_$SEQ
  LOG=$HERE/output/$SCEN.txt
  : >"$LOG"
  PIDS=()
  say "=== scenario $SCEN: $2"
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" || exit 1
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
  say "scratch database $DB"
}
finish() {
  "$BIN" check "$N_ROWS" >>"$LOG" 2>&1
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  "${PSQL[@]}" -d postgres -c "DROP DATABASE $DB WITH (FORCE)" && say "dropped $DB"
  cat "$LOG"; echo
}
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  [ -n "${DB:-}" ] && "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
}
trap cleanup EXIT

# 1. The crash test as specified: A killed mid-way, B started afterwards (A's heartbeat is
#    >2 s old by then, i.e. already stale for heartbeat 1 s x 2).
s_kill_restart() {
  scenario kill-restart "A SIGKILLed at 1.5 s, B started 3 s later (heartbeat 1s x 2 missed)"
  "$BIN" push "$N_ROWS" >>"$LOG" 2>&1
  start_worker A
  sleep 1.5; say "next_row before kill: $(next_row)"; kill9 A
  sleep 3
  start_worker B
  "$BIN" wait "$N_ROWS" "$WAIT_S" >>"$LOG" 2>&1
  finish
}

# 2. B started immediately after the kill, while A's lock/heartbeat is still fresh.
s_kill_fresh() {
  scenario kill-fresh-lock "A SIGKILLed at 1.5 s, B started at once (A's last heartbeat < 1 s old)"
  "$BIN" push "$N_ROWS" >>"$LOG" 2>&1
  start_worker A
  sleep 1.5; say "next_row before kill: $(next_row)"; kill9 A
  start_worker B
  "$BIN" wait "$N_ROWS" "$WAIT_S" >>"$LOG" 2>&1
  finish
}

# 3. Two live workers from the start; the one holding the job is SIGKILLed; the other resumes.
s_two_live_kill() {
  scenario two-live-kill-holder "A and B both running; whichever holds the job is SIGKILLed at 1.5 s"
  "$BIN" push "$N_ROWS" >>"$LOG" 2>&1
  start_worker A; start_worker B
  sleep 1.5
  h=$(holder); say "job held by '$h', next_row=$(next_row)"
  if [ "$h" = A ] || [ "$h" = B ]; then kill9 "$h"; else say "no holder to kill"; fi
  "$BIN" wait "$N_ROWS" "$WAIT_S" >>"$LOG" 2>&1
  finish
}

# 4. Two live workers, no kill, longer job: is the job ever run by both at once?
s_two_live() {
  scenario two-live-no-kill "A and B both running for a 20000-row job (~21 s), nobody killed"
  local n=$N_ROWS; N_ROWS=20000
  "$BIN" push "$N_ROWS" >>"$LOG" 2>&1
  start_worker A; start_worker B
  "$BIN" wait "$N_ROWS" "$WAIT_S" >>"$LOG" 2>&1
  finish
  N_ROWS=$n
}

# 5. Same worker name restarted right after the crash (what systemd Restart= with a fixed
#    worker name, e.g. worker@1, does).
s_same_name() {
  scenario same-name-restart "A SIGKILLed at 1.5 s, a new process also named A started at once; wait 30 s"
  "$BIN" push "$N_ROWS" >>"$LOG" 2>&1
  start_worker A
  sleep 1.5; say "next_row before kill: $(next_row)"; kill9 A
  start_worker A
  "$BIN" wait "$N_ROWS" 30 >>"$LOG" 2>&1
  finish
}

# 6. apalis defaults (Config::default(): heartbeat 30 s, missed_heartbeats 10 => 300 s orphan timeout).
s_defaults() {
  scenario default-config "apalis Config::default() heartbeat/missed; A SIGKILLed at 1.5 s, B started 3 s later"
  "$BIN" push "$N_ROWS" >>"$LOG" 2>&1
  start_worker A HEARTBEAT_MS=30000 MISSED_HEARTBEATS=10
  sleep 1.5; say "next_row before kill: $(next_row)"; kill9 A
  sleep 3
  start_worker B HEARTBEAT_MS=30000 MISSED_HEARTBEATS=10
  "$BIN" wait "$N_ROWS" "$WAIT_S" >>"$LOG" 2>&1
  finish
}

# 7. Sub-second orphan timeout (heartbeat 400 ms x 2 = 0.8 s; apalis truncates it to whole seconds).
s_subsecond() {
  scenario subsecond-orphan-timeout "A and B both running with heartbeat 400 ms x 2 missed, nobody killed"
  local n=$N_ROWS; N_ROWS=20000
  "$BIN" push "$N_ROWS" >>"$LOG" 2>&1
  start_worker A HEARTBEAT_MS=400; start_worker B HEARTBEAT_MS=400
  "$BIN" wait "$N_ROWS" 60 >>"$LOG" 2>&1
  finish
  N_ROWS=$n
}

# 8. A's handler blocks its thread for 3 s (synchronous work, e.g. CSV parsing) while B is live.
s_blocking() {
  scenario blocking-handler "A's handler blocks the thread 3 s after chunk 10 (heartbeat 1s x 2); B live; nobody killed"
  "$BIN" push "$N_ROWS" >>"$LOG" 2>&1
  start_worker A BLOCK_AT_CHUNK=10 BLOCK_MS=3000
  sleep 0.5
  start_worker B
  "$BIN" wait "$N_ROWS" "$WAIT_S" >>"$LOG" 2>&1
  sleep 1 # let A's stale run report what it did after waking up
  finish
}

# 9. Two live processes with the same worker name; the first (holding the job) is then SIGKILLed.
s_same_name_live() {
  scenario same-name-live "A running the job; a 2nd process named A started at 1 s; 1st A SIGKILLed at 2.5 s; wait 30 s"
  "$BIN" push "$N_ROWS" >>"$LOG" 2>&1
  start_worker A; local first=$PID_A
  sleep 1
  start_worker A
  sleep 1.5
  kill -9 "$first" && say "kill -9 first worker A pid=$first"
  "$BIN" wait "$N_ROWS" 30 >>"$LOG" 2>&1
  finish
}

ALL=(kill-restart kill-fresh-lock two-live-kill-holder two-live-no-kill same-name-restart subsecond-orphan-timeout blocking-handler same-name-live default-config)
[ $# -eq 0 ] && set -- "${ALL[@]}"
for s in "$@"; do
  case $s in
    kill-restart) s_kill_restart ;;
    kill-fresh-lock) s_kill_fresh ;;
    two-live-kill-holder) s_two_live_kill ;;
    two-live-no-kill) s_two_live ;;
    same-name-restart) s_same_name ;;
    subsecond-orphan-timeout) s_subsecond ;;
    blocking-handler) s_blocking ;;
    same-name-live) s_same_name_live ;;
    default-config) s_defaults ;;
    *) echo "unknown scenario $s (known: ${ALL[*]})"; exit 2 ;;
  esac
done
