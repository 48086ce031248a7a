#!/usr/bin/env bash
# Run outdial: `ops/run.sh [subcommand and args]` (default: `run`).
# Brings up Redis + PostgreSQL on loopback first (see ops/stack.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=ops/env.sh
source ops/env.sh

exec cargo run --release --locked -p outdial-cli --bin outdial -- "${@:-run}"
