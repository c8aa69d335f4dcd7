#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, only what is missing:
# the cross toolchain and qemu-user (scripts/install-cross.sh), systemd-analyze, dpkg tools.
# Idempotent; quick when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-deb >/dev/null || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    else
        echo "install-deps: missing ${need[*]} and not root" >&2
        exit 1
    fi
fi
if [ "${LANBOX_SKIP_ARM:-0}" != 1 ]; then
    scripts/install-cross.sh
fi
