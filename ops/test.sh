#!/usr/bin/env bash
# Run outdial's whole test suite: `ops/test.sh [extra cargo test args]`.
# Brings up Redis + PostgreSQL on loopback first (see ops/stack.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=ops/env.sh
source ops/env.sh

# exec: the script exits with cargo's exit code.
exec cargo test --workspace --locked "$@"
