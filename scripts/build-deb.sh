#!/usr/bin/env bash
# Build lanbox_VERSION_ARCH.deb by hand with dpkg-deb (no debhelper, no cargo-deb).
#
# Usage: scripts/build-deb.sh ARCH [--binary PATH] [--version V] [--out DIR]
#   ARCH        amd64 | arm64 | armhf
#   --binary    the lanbox executable to package. Defaults:
#                 arm64  $CARGO_TARGET_DIR/dist/aarch64-unknown-linux-musl/lanbox
#                 armhf  $CARGO_TARGET_DIR/dist/armv7-unknown-linux-musleabihf/lanbox
#                 amd64  $CARGO_TARGET_DIR/release/lanbox
#               (the dist/ paths are written by scripts/build-arm.sh)
#   --version   package version (default: [package].version of Cargo.toml)
#   --out       output directory (default: $CARGO_TARGET_DIR/dist)
#
# Contents: /usr/bin/lanbox, the units from systemd/ in /lib/systemd/system, the conffile
# /etc/lanbox/lanbox.toml, and maintainer scripts that enable the units (deb-systemd-helper,
# which also works in an image build without a running systemd) and talk to systemd only
# when it is running. Depends: the Noto fonts PDF export reads from /usr/share/fonts
# (fonts-noto-core, fonts-noto-cjk, fonts-noto-color-emoji); a dynamically linked binary (a
# plain host build) also gets libc6/libgcc-s1.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
die() { printf 'build-deb: %s\n' "$*" >&2; exit 1; }

arch="" binary="" version="" out="$TARGET_DIR/dist"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="${2:?}"; shift 2 ;;
        --version) version="${2:?}"; shift 2 ;;
        --out) out="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) [ -z "$arch" ] || die "more than one ARCH"; arch="$1"; shift ;;
    esac
done

case "$arch" in
    amd64) machine="Advanced Micro Devices X86-64"; default_bin="$TARGET_DIR/release/lanbox" ;;
    arm64) machine="AArch64"; default_bin="$TARGET_DIR/dist/aarch64-unknown-linux-musl/lanbox" ;;
    armhf) machine="ARM"; default_bin="$TARGET_DIR/dist/armv7-unknown-linux-musleabihf/lanbox" ;;
    *) die "ARCH must be amd64, arm64 or armhf" ;;
esac
binary="${binary:-$default_bin}"
[ -f "$binary" ] || die "no binary at $binary (build it first, or pass --binary)"

if [ -z "$version" ]; then
    version="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["package"]["version"])' "$REPO/Cargo.toml")"
fi
# SemVer pre-releases sort before the release; in Debian that is what "~" does.
version="${version/-/\~}"
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "bad version $version"

got="$(readelf -h "$binary" | sed -n 's/^ *Machine: *//p')"
[ "$got" = "$machine" ] || die "$binary is for '$got', not $arch"

depends=()
needed="$(readelf -d "$binary" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
for lib in $needed; do
    case "$lib" in
        libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libutil.so.*|ld-linux*) dep=libc6 ;;
        libgcc_s.so.*) dep=libgcc-s1 ;;
        *) die "$binary needs $lib: no package mapping for it (build a static binary)" ;;
    esac
    [[ " ${depends[*]-} " == *" $dep "* ]] || depends+=("$dep")
done
[ -z "$needed" ] || echo "build-deb: note: $binary is dynamically linked (depends: ${depends[*]})"
# PDF export reads these fonts from the box (src/export/fonts.rs), never from the binary.
depends+=(fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji)

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/lanbox_${version}_${arch}"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
    "$root/etc/lanbox" "$root/usr/share/doc/lanbox" "$root/usr/lib/sysusers.d"
install -m 0755 "$binary" "$root/usr/bin/lanbox"
# The units' static users (lanbox, lanbox-update); postinst makes them.
install -m 0644 "$REPO/systemd/lanbox.sysusers" "$root/usr/lib/sysusers.d/lanbox.conf"
units=()
for u in "$REPO"/systemd/*.service "$REPO"/systemd/*.socket; do
    install -m 0644 "$u" "$root/lib/systemd/system/"
    units+=("$(basename "$u")")
done

# --- conffile ---------------------------------------------------------------------
# Mirrors Config::default() in src/config.rs (tests/cli.rs checks that it parses without
# warnings). lanbox.service points LANBOX_CONFIG at it.
cat > "$root/etc/lanbox/lanbox.toml" <<'EOF'
# lanbox configuration. Every key can also be set as LANBOX_<SECTION>_<KEY>
# (for lanbox.service: `systemctl edit lanbox`, then Environment=LANBOX_STORE_CACHE_MB=32).
# Board-specific values (cache size, limits) are listed in board/*.toml of the source tree.

[store]
# redb page cache, MiB: 64 for 2 GB boards, 16 for 1 GB boards.
cache_mb = 64
# auto: AES-256-GCM on CPUs with AES instructions, else ChaCha20-Poly1305.
cipher = "auto"
batch_max = 4096
queue = 64

[server]
# Used only when systemd passes no sockets (lanbox.socket normally owns 443 and 80).
listen = "0.0.0.0:8443"
redirect_listen = ""
name = "lanbox.local"
mdns = true
# Operator certificate chain and key (PEM); empty: self-signed, generated on first start.
tls_cert = ""
tls_key = ""
# Client connections at once (WebSockets included), and from one address; 0: derived from
# the open-files limit (at most 1024, and 64 per address).
max_connections = 0
max_connections_per_client = 0

[telegram]
# The team's own Telegram application, needed only for user accounts (docs/user-accounts.md):
# create it at https://my.telegram.org -> API development tools. 0 and "": none.
api_id = 0
api_hash = ""

[log]
level = "info"
EOF
chmod 0644 "$root/etc/lanbox/lanbox.toml"
echo /etc/lanbox/lanbox.toml > "$root/DEBIAN/conffiles"

cat > "$root/usr/share/doc/lanbox/README.md" <<'EOF'
# lanbox

On-premises Telegram unified inbox. This package installs:

- `/usr/bin/lanbox`, a single static binary;
- `lanbox.socket` (port 443, HTTPS) and `lanbox-http.socket` (port 80), which systemd binds
  and hands to `lanbox.service`, so the service runs with no capabilities;
- `lanbox.service` (`lanbox serve --data /var/lib/lanbox`, a dynamic user, hardened sandbox,
  30 s watchdog);
- `lanbox-mark-good.service`, which confirms a RAUC A/B update once lanbox is healthy (it
  does nothing on machines without `/etc/rauc/system.conf`).

Data, the TLS certificate and the master key live in `/var/lib/lanbox` (with a dynamic user
that is `/var/lib/private/lanbox`). Removing or purging the package leaves them in place.

First start: `systemctl start lanbox`, then `journalctl -u lanbox` shows the certificate's
SHA-256 fingerprint; open https://lanbox.local or the box's address.
EOF
cat > "$root/usr/share/doc/lanbox/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lanbox

Files: *
Copyright: the lanbox authors
License: not yet declared (Cargo.toml has no license field)
EOF
chmod 0644 "$root/usr/share/doc/lanbox/"*

# --- maintainer scripts (the shape dh_installsystemd generates) -------------------
unit_list="${units[*]}"
cat > "$root/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
UNITS="$unit_list"
if [ "\$1" = configure ] || [ "\$1" = abort-upgrade ] || [ "\$1" = abort-deconfigure ] || [ "\$1" = abort-remove ]; then
    # The system users the units run as (kept on purge, as Debian keeps system users).
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers lanbox.conf
    else
        getent passwd lanbox >/dev/null || adduser --system --group --home /var/lib/lanbox --no-create-home lanbox
        getent passwd lanbox-update >/dev/null || adduser --system --group --no-create-home lanbox-update
    fi
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        for u in \$UNITS; do
            # Removes only masks that deb-systemd-helper itself set at removal.
            deb-systemd-helper unmask "\$u" >/dev/null || true
            # was-enabled is true on a first install; an admin's "disable" survives upgrades.
            if deb-systemd-helper --quiet was-enabled "\$u"; then
                deb-systemd-helper enable "\$u" >/dev/null || true
            else
                deb-systemd-helper update-state "\$u" >/dev/null || true
            fi
        done
    fi
    # Only talk to systemd when it is running (not in a chroot, an image build or a container
    # without systemd).
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        if [ -n "\$2" ]; then action=restart; else action=start; fi
        # A port already taken (another web server on 80/443) must not fail the install.
        deb-systemd-invoke \$action lanbox.socket lanbox-http.socket lanbox.service >/dev/null \\
            || echo "lanbox: could not \$action the service; see: systemctl status lanbox.socket lanbox.service" >&2
    fi
fi
exit 0
EOF
cat > "$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop lanbox-mark-good.service lanbox.service lanbox.socket lanbox-http.socket >/dev/null || true
fi
exit 0
EOF
cat > "$root/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
UNITS="$unit_list"
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ -x /usr/bin/deb-systemd-helper ]; then
    if [ "\$1" = remove ]; then
        deb-systemd-helper mask \$UNITS >/dev/null || true
    fi
    if [ "\$1" = purge ]; then
        deb-systemd-helper purge \$UNITS >/dev/null || true
        deb-systemd-helper unmask \$UNITS >/dev/null || true
    fi
fi
if [ "\$1" = purge ] && { [ -e /var/lib/private/lanbox ] || [ -e /var/lib/lanbox ]; }; then
    echo "lanbox: the inbox data in /var/lib/lanbox was kept; delete it by hand if it is no longer wanted" >&2
fi
exit 0
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

installed_kib="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
{
    echo "Package: lanbox"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: ${LANBOX_DEB_MAINTAINER:-lanbox maintainers <lanbox@example.invalid>}"
    echo "Installed-Size: $installed_kib"
    [ "${#depends[@]}" -eq 0 ] || echo "Depends: $(IFS=,; echo "${depends[*]}" | sed 's/,/, /g')"
    echo "Suggests: rauc"
    echo "Section: net"
    echo "Priority: optional"
    echo "Description: on-premises Telegram unified inbox"
    echo " lanbox keeps a team's Telegram conversations on a box on the LAN, stores them"
    echo " encrypted at rest and serves a shared inbox to browsers over HTTPS and WebSocket."
} > "$root/DEBIAN/control"

(cd "$root" && find . -path ./DEBIAN -prune -o -type f ! -path './etc/*' -printf '%P\0' \
    | sort -z | xargs -0 md5sum > DEBIAN/md5sums)

# Reproducible: fixed mtimes (dpkg-deb takes the archive's own times from SOURCE_DATE_EPOCH).
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || echo 0)}"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb="$out/lanbox_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "build-deb: $deb ($(stat -c %s "$deb") bytes, installed size ${installed_kib} KiB)"
