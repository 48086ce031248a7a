# shellcheck shell=bash
# Sourced by ops/run.sh and ops/test.sh (from the repo root): checks that cargo exists,
# brings up Redis + PostgreSQL on loopback (ops/stack.sh) and exports their URLs.

command -v cargo >/dev/null 2>&1 ||
  { echo "$0: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }

# Assign first: a failing stack.sh inside `eval "$(...)"` would go unnoticed.
stack_env=$(ops/stack.sh)
eval "$stack_env"
export OUTDIAL_DATABASE_URL OUTDIAL_REDIS_URL
# #[sqlx::test] makes a fresh database per test on the server DATABASE_URL names.
export DATABASE_URL="$OUTDIAL_DATABASE_URL"
