#!/usr/bin/env bash
# Installs on a Debian 12 (bookworm) host what image/ needs, only what is missing:
# mmdebstrap (rootfs without root), e2fsprogs/dosfstools/mtools/fdisk (filesystems and the GPT
# without mounting), grub-common (grub-mkstandalone; the arm64 modules come from the registry
# at build time), rauc + squashfs-tools (bundles), kmod/cpio/xz/zstd (initramfs),
# qemu-system-arm + qemu-efi-aarch64 + python3 (image/boot-test.py), llvm (llvm-strip),
# file (check.sh).
# Idempotent; quick when everything is present.
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in mmdebstrap uidmap e2fsprogs dosfstools mtools fdisk grub-common rauc squashfs-tools \
    kmod cpio xz-utils zstd openssl file llvm qemu-system-arm qemu-efi-aarch64 python3; do
    have "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
    else
        echo "image/install-deps: missing ${need[*]} and not root" >&2
        exit 1
    fi
fi
