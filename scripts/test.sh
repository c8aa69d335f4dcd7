#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs them.
# `.ci/run` calls exactly this. Set CARGO_TARGET_DIR to reuse builds between runs.
#
#   LANBOX_SKIP_ARM=1   skip the ARM cross builds and qemu runs (quick local runs)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }

step "install test dependencies"
scripts/install-deps.sh

step "host tests"
cargo test --locked --all-targets

step "API from outside: Schemathesis against the OpenAPI document, sslscan"
cargo build --locked --bin lanbox
scripts/api-check.sh "$TARGET_DIR/debug/lanbox"

step "browser: the web inbox in Chromium (tests/browser)"
node tests/browser/run.mjs

step "boards, systemd units, package"
scripts/board-info.py --check
scripts/check-systemd.sh
if [ "$(id -u)" -eq 0 ]; then
    cargo build --locked --bin lanbox
    scripts/test-deb.sh --binary "$TARGET_DIR/debug/lanbox"
else
    echo "not root: skipping the dpkg install test"
fi

if [ "${LANBOX_SKIP_ARM:-0}" != 1 ]; then
    step "aarch64: static build, end-to-end smoke test under qemu-user"
    scripts/build-arm.sh aarch64
    LANBOX_SMOKE_BIN="$TARGET_DIR/dist/aarch64-unknown-linux-musl/lanbox" \
    LANBOX_SMOKE_RUNNER=qemu-aarch64-static \
        cargo test --locked --test smoke -- --nocapture

    step "disk image and signed update bundle for the qemu board: layout and signatures (image/)"
    image/install-deps.sh
    LANBOX_BIN="$TARGET_DIR/dist/aarch64-unknown-linux-musl/lanbox" image/build.sh qemu-aarch64
    image/bundle.sh qemu-aarch64
    image/check.sh qemu-aarch64
    # The boot test under qemu-system-aarch64 (image/boot-test.py) takes several minutes more:
    # docs/updates.md gives its command and figures.

    step "armv7: static build, started once under qemu-user"
    scripts/build-arm.sh armv7 --smoke
fi
step "all tests passed"
