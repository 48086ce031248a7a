#!/usr/bin/env bash
# Run outdial's whole test suite: `ops/test.sh [extra cargo test args]`.
# Brings up Redis + PostgreSQL on loopback first (see ops/stack.sh), runs every cargo test,
# then the deployment files (ops/check-deploy.sh) and schemathesis against the real API
# (ops/schemathesis.sh); those two are skipped when extra cargo arguments select a subset.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The admin page test drives Debian's chromium through chromedriver.
export OUTDIAL_STACK_BROWSER=1
# shellcheck source=ops/env.sh
source ops/env.sh

cargo test --workspace --locked "$@"
if [[ $# -eq 0 ]]; then
    bash ops/check-deploy.sh
    bash ops/schemathesis.sh
fi
