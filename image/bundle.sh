#!/usr/bin/env bash
# Builds a signed RAUC bundle (format=verity) of a root filesystem image:
#
#   image/bundle.sh BOARD [ROOTFS_EXT4 [OUTPUT]]
#
# ROOTFS_EXT4 defaults to target-image/BOARD/rootfs.ext4 (image/build.sh BOARD). The bundle's
# version is the rootfs's own IMAGE_VERSION (read from its /usr/lib/os-release with debugfs),
# so what RAUC shows before installing is what the slot will run, and the box's pre-install
# handler (image/rootfs/pre-install) can refuse a bundle older than the running image.
# OUTPUT defaults to target-image/BOARD/lanbox-BOARD-VERSION.raucb.
#
# Environment: RAUC_CERT, RAUC_KEY (default: the development signing pair from image/keys.sh),
# RAUC_KEYRING (the CA to check the result against; default the development CA).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$here/.." && pwd)"
die() { printf 'bundle: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: image/bundle.sh BOARD [ROOTFS_EXT4 [OUTPUT]]"
board="$1"
conf="$here/boards/$board.conf"
[ -f "$conf" ] || die "no board descriptor $conf"
# shellcheck disable=SC1090
. "$conf"
out="${IMAGE_OUT:-$REPO/target-image}/$board"
rootfs="${2:-$out/rootfs.ext4}"
[ -f "$rootfs" ] || die "no $rootfs (image/build.sh $board)"
cert="${RAUC_CERT:-$here/keys/dev/signing.cert.pem}"
key="${RAUC_KEY:-$here/keys/dev/signing.key.pem}"
keyring="${RAUC_KEYRING:-$here/keys/dev/ca.cert.pem}"
for f in "$cert" "$key" "$keyring"; do [ -f "$f" ] || die "no $f (image/keys.sh)"; done
for t in rauc mksquashfs debugfs; do command -v "$t" >/dev/null || die "$t not found: run image/install-deps.sh"; done

version="$(debugfs -R 'cat /usr/lib/os-release' "$rootfs" 2>/dev/null | sed -n 's/^IMAGE_VERSION=//p' | tr -d '"')"
[ -n "$version" ] || die "$rootfs has no IMAGE_VERSION in /usr/lib/os-release"
bundle="${3:-$out/lanbox-$board-$version.raucb}"

start=$SECONDS
content="$(mktemp -d)"
trap 'rm -rf "$content"' EXIT
# A hard link when possible (same filesystem): the rootfs image is hundreds of MiB.
ln "$rootfs" "$content/rootfs.ext4" 2>/dev/null || cp --sparse=always "$rootfs" "$content/rootfs.ext4"
cat >"$content/manifest.raucm" <<MANIFEST
[update]
compatible=$COMPATIBLE
version=$version
description=lanbox image for $board
build=$(date -u +%Y%m%dT%H%M%SZ)

[bundle]
format=verity

[image.rootfs]
filename=rootfs.ext4
MANIFEST
rm -f "$bundle"
rauc bundle --cert="$cert" --key="$key" --keyring="$keyring" "$content" "$bundle" >/dev/null
rauc info --keyring="$keyring" "$bundle" >/dev/null 2>&1 || die "rauc info does not accept the new bundle"
printf 'bundle: %s: version %s, %s bytes (%d MiB), in %d s\n' "$bundle" "$version" \
    "$(stat -c %s "$bundle")" $(( $(stat -c %s "$bundle") / 1048576 )) $((SECONDS - start))
