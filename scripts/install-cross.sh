#!/usr/bin/env bash
# Install what ARM cross builds of lanbox need on a Debian 12 machine without Docker.
#
#   aarch64-unknown-linux-musl     rustup target + Debian's gcc-aarch64-linux-gnu (ring compiles C)
#   armv7-unknown-linux-musleabihf no prebuilt std: rust-src + -Zbuild-std, zig as the C compiler
#                                  and linker (ziglang from PyPI, cargo-zigbuild)
#   both                           qemu-user-static to run the binaries, binutils (readelf) and
#                                  llvm (llvm-strip, which strips both ARM flavours)
#
# Idempotent: every step checks first, so a second run does nothing and takes about a second.
# The Python venv lives outside the repository, in $LANBOX_CROSS_HOME (default
# ~/.cache/lanbox-cross); build-arm.sh looks for it in the same place.
#
# Usage: scripts/install-cross.sh [--no-armv7]
set -euo pipefail

CROSS_HOME="${LANBOX_CROSS_HOME:-$HOME/.cache/lanbox-cross}"
VENV="$CROSS_HOME/venv"
want_armv7=1
for arg in "$@"; do
    case "$arg" in
        --no-armv7) want_armv7=0 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { printf '[install-cross] %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- Debian packages -------------------------------------------------------
# package name -> a file it installs, so the check needs no dpkg-query per package.
declare -A apt_marker=(
    [gcc-aarch64-linux-gnu]=/usr/bin/aarch64-linux-gnu-gcc
    # ring's C includes <stdint.h> & co.; without the target's headers gcc silently falls
    # back to the host's /usr/include and fails on bits/libc-header-start.h.
    [libc6-dev-arm64-cross]=/usr/aarch64-linux-gnu/include/stdint.h
    [qemu-user-static]=/usr/bin/qemu-aarch64-static
    [binutils]=/usr/bin/readelf
    [llvm]=/usr/bin/llvm-strip
    [python3-venv]=/usr/lib/python3/dist-packages/venv
)
missing=()
for pkg in "${!apt_marker[@]}"; do
    [ -e "${apt_marker[$pkg]}" ] || missing+=("$pkg")
done
# pyenv or another interpreter may already provide venv; only ask apt for it when
# `python3 -m venv` really cannot work.
if [[ " ${missing[*]-} " == *" python3-venv "* ]] && python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing=("${missing[@]/python3-venv}")
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]-}" | sed '/^$/d')
if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # An update is needed on a fresh machine; skip it when the lists are less than a day old.
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
        as_root apt-get update -qq
    fi
    # Lists younger than a day can still name versions the mirror has dropped: update, retry.
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || { as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
else
    log "Debian packages present"
fi

# --- Rust targets and components --------------------------------------------
installed_targets="$(rustup target list --installed)"
if ! grep -qx aarch64-unknown-linux-musl <<<"$installed_targets"; then
    log "rustup target add aarch64-unknown-linux-musl"
    rustup target add aarch64-unknown-linux-musl
else
    log "rust target aarch64-unknown-linux-musl present"
fi

[ "$want_armv7" -eq 1 ] || { log "done (armv7 skipped)"; exit 0; }

if ! rustup component list --installed | grep -q '^rust-src'; then
    log "rustup component add rust-src"
    rustup component add rust-src
else
    log "rust-src present"
fi

# --- zig and cargo-zigbuild (armv7) -----------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    mkdir -p "$CROSS_HOME"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -m ziglang version >/dev/null 2>&1; then
    log "pip install ziglang"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check ziglang
else
    log "ziglang $("$VENV/bin/python" -m ziglang version) present"
fi

if command -v cargo-zigbuild >/dev/null 2>&1; then
    log "cargo-zigbuild present ($(command -v cargo-zigbuild))"
else
    log "cargo install cargo-zigbuild --locked"
    cargo install cargo-zigbuild --locked
fi

log "done"
