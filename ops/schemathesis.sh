#!/usr/bin/env bash
# Runs schemathesis (from PyPI) against `outdial serve` and its own /openapi.json: bounded
# property-based requests to every operation, failing on any 5xx, an undocumented status,
# a wrong content type or a response that does not match its schema.
#
# Expects OUTDIAL_DATABASE_URL (ops/env.sh sets it). Creates a scratch database, starts the
# debug binary on a free loopback port with a fixed demo key, runs schemathesis with a fixed
# seed and a bounded number of examples, then stops the server and drops the database.
# The virtualenv is cached under target/ (first run: ~20 s of pip install).
#
# Knobs: OUTDIAL_SCHEMATHESIS_EXAMPLES (default 50 per operation and phase).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/schemathesis-venv"
examples="${OUTDIAL_SCHEMATHESIS_EXAMPLES:-50}"
: "${OUTDIAL_DATABASE_URL:?run through ops/test.sh or source ops/env.sh first}"

if [[ ! -x "$venv/bin/schemathesis" ]]; then
    echo "schemathesis.sh: installing schemathesis into $venv" >&2
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian splits venv support into its own package.
        rm -rf "$venv"
        if [[ $(id -u) -eq 0 ]]; then apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi

cargo build --quiet --locked -p outdial-cli
bin="$target/debug/outdial"

base="${OUTDIAL_DATABASE_URL%/*}"
db="outdial_schemathesis_$$"
psql "$base/postgres" -q -c "CREATE DATABASE $db" >/dev/null
key="odk_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
log="$(mktemp)"
cleanup() {
    [[ -n "${server:-}" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    psql "$base/postgres" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
    rm -f "$log"
}
trap cleanup EXIT

OUTDIAL_DATABASE_URL="$base/$db" OUTDIAL_DEMO_API_KEY="$key" \
    "$bin" serve --bind 127.0.0.1:0 >"$log" 2>/dev/null &
server=$!
for _ in $(seq 1 100); do
    [[ -s "$log" ]] && break
    kill -0 "$server" 2>/dev/null || { echo "schemathesis.sh: outdial serve exited" >&2; exit 1; }
    sleep 0.1
done
addr="$(python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["listening"])' <"$log")"
url="http://$addr"

# A customer to aim at, so that some generated requests reach real rows.
python3 - "$url/customers" "$key" "$root/tests/fixtures/seed-customer.json" <<'PY'
import sys, urllib.request
url, key, path = sys.argv[1:]
body = open(path, "rb").read()
req = urllib.request.Request(url, data=body, method="POST",
                             headers={"X-API-Key": key, "Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=10).read()
PY

"$venv/bin/schemathesis" --config-file "$root/ops/schemathesis.toml" run "$url/openapi.json" \
    --header "X-API-Key: $key" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$examples" \
    --seed 20261122 \
    --workers 2 \
    --request-timeout 10 \
    --no-color
