#!/usr/bin/env bash
# Builds the lanbox disk image for a board, without root, loop devices or mounts:
#
#   image/build.sh BOARD          BOARD: a file image/boards/BOARD.conf (qemu-aarch64, rpi4)
#
# Outputs in ${IMAGE_OUT:-target-image}/BOARD/:
#   disk.img      the whole disk (GPT: the partitions the board descriptor names), sparse
#   rootfs.ext4   the root filesystem, what image/bundle.sh puts in an update bundle
#   data.ext4     the initial data partition (/var/lib)
#   boot.vfat     the ESP / boot partition
#   manifest.txt  version, sizes, partition table
#
# Environment:
#   LANBOX_BIN     the static aarch64 lanbox (default: $CARGO_TARGET_DIR or target/, under
#                  aarch64-unknown-linux-musl/release/lanbox). Build it with
#                  `scripts/build-arm.sh aarch64`. It is stripped into the image.
#   IMAGE_VERSION  the image's version (default: CRATE_VERSION.COMMIT_UNIX_TIME of HEAD), dotted
#                  numbers; bundles must never go down (image/rootfs/pre-install).
#   RAUC_KEYRING   the CA certificate the box trusts for bundles (default: the development CA,
#                  image/keys/dev/ca.cert.pem, made by image/keys.sh if missing).
#   IMAGE_SUITE    Debian suite (default trixie: RAUC 1.13). IMAGE_MIRROR: a Debian mirror URL.
#   MMDEBSTRAP_MODE  default unshare (needs user namespaces; as a user, /etc/subuid entries).
#
# Host tools: image/install-deps.sh. Details: docs/updates.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$here/.." && pwd)"
die() { printf 'build: %s\n' "$*" >&2; exit 1; }
say() { printf 'build: %s\n' "$*" >&2; }

[ $# -eq 1 ] || die "usage: image/build.sh BOARD (boards: $(cd "$here/boards" && ls | sed 's/\.conf$//' | tr '\n' ' '))"
BOARD_NAME="$1"
BOARD_CONF="$here/boards/$BOARD_NAME.conf"
[ -f "$BOARD_CONF" ] || die "no board descriptor $BOARD_CONF"
# shellcheck disable=SC1090
. "$BOARD_CONF"
# shellcheck disable=SC1091
. "$here/lib.sh"
parse_partitions

out="${IMAGE_OUT:-$REPO/target-image}/$BOARD_NAME"
work="$out/work"
start=$SECONDS

for t in mmdebstrap mke2fs mkfs.vfat mcopy sfdisk depmod modprobe cpio systemd-sysusers llvm-strip; do
    command -v "$t" >/dev/null || die "$t not found: run image/install-deps.sh"
done

lanbox="${LANBOX_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/aarch64-unknown-linux-musl/release/lanbox}"
[ -f "$lanbox" ] || die "no lanbox binary at $lanbox (scripts/build-arm.sh aarch64, or set LANBOX_BIN)"
readelf -h "$lanbox" | grep -q 'Machine:.*AArch64' || die "$lanbox is not an aarch64 binary"
readelf -l "$lanbox" | grep -q 'program interpreter' && die "$lanbox is not static"

keyring="${RAUC_KEYRING:-$here/keys/dev/ca.cert.pem}"
if [ ! -f "$keyring" ]; then
    [ -z "${RAUC_KEYRING:-}" ] || die "no keyring at $keyring"
    "$here/keys.sh"
fi
version="${IMAGE_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n1).$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)}"
[[ "$version" =~ ^[0-9]+(\.[0-9]+)*$ ]] || die "IMAGE_VERSION must be dotted numbers, not $version"

rm -rf "$work"
mkdir -p "$work"
llvm-strip -o "$work/lanbox" "$lanbox"
cp "$keyring" "$work/keyring.pem"
cat >"$work/env.sh" <<ENV
BOARD_CONF='$BOARD_CONF'
BOARD_NAME='$BOARD_NAME'
REPO='$REPO'
VERSION='$version'
KEYRING='$work/keyring.pem'
LANBOX='$work/lanbox'
FONTS_RS='$REPO/src/export/fonts.rs'
DATA_MIB='$DATA_MIB'
ENV

# --- root filesystem: mmdebstrap extracts, image/rootfs.sh configures and makes the images ---
packages=(base-files base-passwd dash coreutils sed grep util-linux mount kmod e2fsprogs
    systemd systemd-sysv libnss-systemd udev dbus systemd-resolved systemd-timesyncd systemd-repart rauc rauc-service
    linux-image-arm64 busybox-static fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji)
[ "$BOOT" = grub ] && packages+=(grub-common)
# shellcheck disable=SC2206
packages+=($EXTRA_PACKAGES)
mirror=()
[ -n "${IMAGE_MIRROR:-}" ] && mirror=("${IMAGE_MIRROR}")
say "mmdebstrap ${IMAGE_SUITE:-trixie} arm64 (${#packages[@]} packages and their dependencies)"
# Without root, the hook runs as root of mmdebstrap's user namespace, which is one of the
# user's subordinate uids (/etc/subuid), not the user: it may write its outputs into WORK only
# if WORK lets anyone write (the hook then opens up what it made, so this user can read and
# delete it).
[ "$(id -u)" -eq 0 ] || chmod 0777 "$work"
mmdebstrap --mode="${MMDEBSTRAP_MODE:-unshare}" --variant=extract --architectures=arm64 \
    --skip=chroot/mount --components=main,non-free-firmware --include="$(IFS=,; echo "${packages[*]}")" \
    --extract-hook="'$here/rootfs.sh' \"\$1\" '$work'" \
    "${IMAGE_SUITE:-trixie}" /dev/null "${mirror[@]}"
[ -f "$work/rootfs.ext4" ] || die "the rootfs hook made no rootfs.ext4"
rootfs_mib=$(( $(stat -c %s "$work/rootfs.ext4") / 1048576 ))
[ "$rootfs_mib" -le "$ROOTFS_MIB" ] || die "rootfs.ext4 is $rootfs_mib MiB, the slots $ROOTFS_MIB MiB"

# --- boot partition -------------------------------------------------------------------------
rm -f "$work/boot.vfat"
mkfs.vfat -C -n "$( [ "$BOOT" = grub ] && echo ESP || echo BOOT )" "$work/boot.vfat" $((ESP_MIB * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
case "$BOOT" in
    grub) build_grub_esp "$work" ;;
    tryboot) build_tryboot_boot "$work" ;;
    *) die "unknown BOOT=$BOOT" ;;
esac

# --- disk: GPT on a plain file, partitions copied in with dd ------------------------------
disk="$work/disk.img"
make_disk "$disk" "$work"

rm -f "$out"/{disk.img,rootfs.ext4,data.ext4,boot.vfat}
mv "$disk" "$work/rootfs.ext4" "$work/data.ext4" "$work/boot.vfat" "$out/"
{
    echo "board=$BOARD_NAME"
    echo "compatible=$COMPATIBLE"
    echo "version=$version"
    echo "keyring=$(openssl x509 -in "$keyring" -noout -subject -fingerprint -sha256 | tr '\n' ' ')"
    echo "lanbox=$(sha256sum "$work/lanbox" | cut -d' ' -f1)"
    echo "disk_bytes=$(stat -c %s "$out/disk.img")"
    echo "disk_allocated_kib=$(du -k "$out/disk.img" | cut -f1)"
    echo "rootfs_bytes=$(stat -c %s "$out/rootfs.ext4")"
    sfdisk --dump "$out/disk.img" | sed 's/^/sfdisk: /'
} >"$out/manifest.txt"
rm -rf "$work"
say "$out/disk.img: version $version, $(( $(stat -c %s "$out/disk.img") / 1048576 )) MiB" \
    "($(( $(du -k "$out/disk.img" | cut -f1) / 1024 )) MiB allocated), rootfs ${rootfs_mib} MiB, in $((SECONDS - start)) s"
