#!/usr/bin/env bash
# Check the systemd units in systemd/ without a running systemd:
#   1. `systemd-analyze verify` in a scratch root (the host's units plus ours and a stub
#      /usr/bin/lanbox), failing on any diagnostic: verify exits 0 on unknown keys and bad
#      values, it only prints them.
#   2. `systemd-analyze security --offline=yes` for each service: fails when the exposure
#      score is above the threshold (default 2.0, for every service). Every failed check (✗)
#      must also be one of the accepted ones below, so a lost setting fails even when the
#      score stays under the threshold.
#
# Usage: scripts/check-systemd.sh [--threshold N]
# Needs systemd-analyze >= 250 for --offline (Debian 12 has 252); installs the `systemd`
# package if systemd-analyze is missing and apt-get is available.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNITS="$REPO/systemd"
threshold=2.0
while [ $# -gt 0 ]; do
    case "$1" in
        --threshold) threshold="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "check-systemd: unknown argument $1" >&2; exit 2 ;;
    esac
done

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "check-systemd: systemd-analyze missing, installing the systemd package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
version="$(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')"
if [ "${version:-0}" -lt 250 ]; then
    echo "check-systemd: systemd-analyze $version is too old for --offline (need >= 250)" >&2
    exit 1
fi
echo "check-systemd: systemd-analyze $version"

# What the services are allowed to fail, and why:
accepted=(
    "RootDirectory=/RootImage="        # runs from the host root; the binary is static anyway
    "PrivateNetwork="                  # talks to Telegram and S3
    "RestrictAddressFamilies=~AF_(INET|INET6)"
    "RestrictAddressFamilies=~AF_UNIX" # sd_notify, D-Bus (RAUC)
    "RestrictAddressFamilies=~AF_NETLINK" # interface addresses for certificate SANs and mDNS
    "IPAddressDeny="                   # Telegram and S3 addresses are not known in advance
    "DeviceAllow="                     # char-rtc:r, added by ProtectClock=
)

fail=0
units=("$UNITS"/*.service "$UNITS"/*.socket)

# --- verify ------------------------------------------------------------------
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/usr/lib/systemd"
# verify resolves dependencies (sockets.target, sysinit.target, ...) inside --root.
for d in /usr/lib/systemd/system /lib/systemd/system; do
    if [ -d "$d" ]; then cp -a "$d" "$root/usr/lib/systemd/"; break; fi
done
mkdir -p "$root/usr/lib/systemd/system"
printf '#!/bin/sh\nexit 0\n' > "$root/usr/bin/lanbox"
chmod 0755 "$root/usr/bin/lanbox"
cp "${units[@]}" "$root/usr/lib/systemd/system/"
targets=()
for u in "${units[@]}"; do targets+=("$root/usr/lib/systemd/system/$(basename "$u")"); done
if out="$(systemd-analyze verify --root="$root" "${targets[@]}" 2>&1)" && [ -z "$out" ]; then
    echo "check-systemd: verify ok (${#units[@]} units)"
else
    printf '%s\n' "${out//$root/}" >&2
    echo "check-systemd: verify FAILED" >&2
    fail=1
fi

# --- security ------------------------------------------------------------------
for svc in "$UNITS"/*.service; do
    name="$(basename "$svc")"
    limit="$threshold"
    out="$(systemd-analyze security --offline=yes "$svc" 2>&1)" || true
    score="$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")"
    # Parse warnings ("Unknown key", "Failed to parse") mean a setting silently did not apply.
    warnings="$(grep -E "^$svc:[0-9]+:" <<<"$out" || true)"
    if [ -z "$score" ]; then
        printf '%s\n' "$out" >&2
        echo "check-systemd: $name: no exposure score" >&2
        fail=1
        continue
    fi
    if [ -n "$warnings" ]; then
        printf '%s\n' "$warnings" >&2
        echo "check-systemd: $name: unit has parse warnings" >&2
        fail=1
    fi
    while IFS= read -r line; do
        setting="$(awk '{print $2}' <<<"$line")"
        ok=0
        for a in "${accepted[@]}"; do [ "$setting" = "$a" ] && ok=1; done
        if [ "$ok" -eq 0 ]; then
            echo "check-systemd: $name: not accepted: $line" >&2
            fail=1
        fi
    done < <(grep '✗' <<<"$out" || true)
    if awk -v s="$score" -v t="$limit" 'BEGIN { exit !(s > t) }'; then
        grep '✗' <<<"$out" >&2 || true
        echo "check-systemd: $name: exposure $score is above $limit" >&2
        fail=1
    else
        echo "check-systemd: $name: exposure $score (limit $limit)"
    fi
done

exit "$fail"
