#!/usr/bin/env bash
# Run outdial: `ops/run.sh [subcommand and args]` (default: `run`).
# Brings up Redis + PostgreSQL on loopback first (see ops/stack.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo >/dev/null 2>&1 ||
  { echo "run.sh: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }

# Assign first: a failing stack.sh inside `eval "$(...)"` would go unnoticed.
stack_env=$(ops/stack.sh)
eval "$stack_env"
export OUTDIAL_DATABASE_URL OUTDIAL_REDIS_URL

exec cargo run --release --locked -p outdial-cli --bin outdial -- "${@:-run}"
