#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs them.
# `.ci/run` calls exactly this. Set CARGO_TARGET_DIR to reuse builds between runs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== host tests"
cargo test --locked --all-targets
