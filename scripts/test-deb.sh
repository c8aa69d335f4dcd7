#!/usr/bin/env bash
# Build the amd64 package, install it into THIS system with dpkg -i, check it, remove it
# (dpkg -r), purge it (dpkg -P). Meant for CI, which runs as root on a throwaway machine.
#
# Usage: scripts/test-deb.sh [--binary PATH] [--expect TEXT]
#   --binary   amd64 lanbox executable (default: $CARGO_TARGET_DIR/release/lanbox)
#   --expect   text `lanbox --version` must print (default: "lanbox VERSION" from Cargo.toml)
#
# Refuses to run when a lanbox package is already installed. Ends with an
# "N passed, N failed" line.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
binary="$TARGET_DIR/release/lanbox" expect=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="${2:?}"; shift 2 ;;
        --expect) expect="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "test-deb: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "test-deb: must run as root (installs into the real system)" >&2; exit 2; }
if dpkg-query -W -f='${Status}' lanbox 2>/dev/null | grep -q 'installed\|config-files'; then
    echo "test-deb: a lanbox package is already on this system; not touching it" >&2
    exit 2
fi
version="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["package"]["version"])' "$REPO/Cargo.toml")"
expect="${expect:-lanbox $version}"

work="$(mktemp -d)"
cleanup() {
    # Whatever happened, leave no package behind.
    dpkg -P lanbox >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
check() { # check DESCRIPTION COMMAND...
    local what="$1"; shift
    if "$@" >"$work/out" 2>&1; then
        passed=$((passed + 1)); echo "ok   $what"
    else
        failed=$((failed + 1)); echo "FAIL $what"; sed 's/^/     /' "$work/out"
    fi
}

"$REPO/scripts/build-deb.sh" amd64 --binary "$binary" --out "$work"
deb="$(ls "$work"/lanbox_*_amd64.deb)"

contents="$(dpkg-deb --contents "$deb")"
for path in ./usr/bin/lanbox ./lib/systemd/system/lanbox.service ./lib/systemd/system/lanbox.socket \
            ./lib/systemd/system/lanbox-http.socket ./lib/systemd/system/lanbox-mark-good.service \
            ./etc/lanbox/lanbox.toml ./usr/share/doc/lanbox/copyright ./usr/lib/sysusers.d/lanbox.conf; do
    check "package contains $path" grep -q " $path\$" <<<"$contents"
done
check "lanbox.toml is a conffile" grep -qx /etc/lanbox/lanbox.toml <(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)

check "dpkg -i" dpkg -i "$deb"
check "dpkg says installed" sh -c "dpkg-query -W -f='\${Status}' lanbox | grep -qx 'install ok installed'"
check "/usr/bin/lanbox --version prints '$expect'" sh -c "/usr/bin/lanbox --version | grep -qF '$expect'"
check "units installed" test -f /lib/systemd/system/lanbox.service -a -f /lib/systemd/system/lanbox.socket
check "postinst made the system users lanbox and lanbox-update (the units' User=)" \
    sh -c 'getent passwd lanbox && getent passwd lanbox-update && test "$(id -u lanbox)" -lt 1000'
if command -v deb-systemd-helper >/dev/null; then
    check "postinst enabled lanbox.socket" test -L /etc/systemd/system/sockets.target.wants/lanbox.socket
    check "postinst enabled lanbox.service" test -L /etc/systemd/system/multi-user.target.wants/lanbox.service
fi
if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify (installed units)" sh -c \
        'out=$(systemd-analyze verify /lib/systemd/system/lanbox.service /lib/systemd/system/lanbox.socket /lib/systemd/system/lanbox-http.socket /lib/systemd/system/lanbox-mark-good.service 2>&1); echo "$out"; [ -z "$out" ]'
fi

check "dpkg -r" dpkg -r lanbox
check "binary removed" test ! -e /usr/bin/lanbox
check "units removed" test ! -e /lib/systemd/system/lanbox.service
check "conffile kept after remove" test -f /etc/lanbox/lanbox.toml
check "dpkg -P" dpkg -P lanbox
check "conffile gone after purge" test ! -e /etc/lanbox/lanbox.toml
check "enable links gone after purge" test ! -e /etc/systemd/system/sockets.target.wants/lanbox.socket

echo "deb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
