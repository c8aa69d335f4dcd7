#!/usr/bin/env bash
# Fast layout and signature check of a built image and bundle (no qemu; seconds), for CI:
#
#   image/check.sh BOARD [BUNDLE]
#
# After image/build.sh BOARD and image/bundle.sh BOARD. Checks:
#   - the disk's GPT is exactly the board descriptor's (start, size, type, name of each partition);
#   - the boot partition has the boot method's files (grub: BOOTAA64.EFI and a grubenv booting A;
#     tryboot: firmware, config.txt, tryboot.txt, slot-a/ with kernel, initramfs, dtb, cmdline);
#   - slot A holds the lanbox binary of the build, its units (enabled), RAUC's system.conf for this
#     board, the keyring, the kernel and initramfs, the export fonts; slot A equals rootfs.ext4;
#   - the data partition is labelled lanbox-data and holds RAUC's and systemd's state directories;
#   - `rauc info --keyring` accepts the bundle (compatible and version of the image), and refuses
#     it against another CA, refuses a bundle signed by another key, and an unsigned one;
#   - the pre-install handler refuses an older version and accepts the same or a newer one;
#   - tryboot boards: the custom backend's state machine (image/rootfs/tryboot-test.sh).
# RAUC_KEYRING: the CA the image was built with (default the development CA).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$here/.." && pwd)"
[ $# -ge 1 ] || { echo "usage: image/check.sh BOARD [BUNDLE]" >&2; exit 2; }
BOARD_NAME="$1"
# shellcheck disable=SC1090
. "$here/boards/$BOARD_NAME.conf"
# shellcheck disable=SC1091
. "$here/lib.sh"
parse_partitions
out="${IMAGE_OUT:-$REPO/target-image}/$BOARD_NAME"
disk="$out/disk.img"
keyring="${RAUC_KEYRING:-$here/keys/dev/ca.cert.pem}"
export MTOOLS_SKIP_CHECK=1
start=$SECONDS
failures=0
ok() { printf 'check: ok   %s\n' "$*"; }
bad() { printf 'check: FAIL %s\n' "$*" >&2; failures=$((failures + 1)); }
expect() { local what="$1"; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }
refuse() { local what="$1"; shift; if "$@" >/dev/null 2>&1; then bad "$what"; else ok "$what"; fi; }
[ -f "$disk" ] || { echo "check: no $disk (image/build.sh $BOARD_NAME)" >&2; exit 1; }
manifest_get() { sed -n "s/^$1=//p" "$out/manifest.txt"; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# --- partition table -------------------------------------------------------------------
sfdisk_script | sed -n 's/^start=\([0-9]*\), size=\([0-9]*\), type=\([^,]*\), name="\(.*\)"$/\1 \2 \3 \4/p' >"$tmp/want"
sfdisk --dump "$disk" | sed -n 's/^.* : start= *\([0-9]*\), size= *\([0-9]*\), type=\([^,]*\),.*name="\([^"]*\)".*$/\1 \2 \3 \4/p' >"$tmp/got"
if diff -u "$tmp/want" "$tmp/got" >"$tmp/diff"; then
    ok "GPT matches boards/$BOARD_NAME.conf ($(wc -l <"$tmp/got") partitions: $PARTITIONS)"
else
    bad "GPT differs from boards/$BOARD_NAME.conf:"; cat "$tmp/diff" >&2
fi
expect "disk is ${DISK_MIB} MiB" test "$(stat -c %s "$disk")" -eq $((DISK_MIB * 1048576))
part() { echo "$disk@@$((PART_START_MIB[$1] * 1048576))"; }
fs() { echo "$disk?offset=$((PART_START_MIB[$1] * 1048576))"; }

# --- boot partition ----------------------------------------------------------------------
esp="$(part "$PART_ESP")"
case "$BOOT" in
    grub)
        expect "ESP: EFI/BOOT/BOOTAA64.EFI" mcopy -i "$esp" ::/EFI/BOOT/BOOTAA64.EFI "$tmp/boot.efi"
        expect "ESP: BOOTAA64.EFI is an arm64 EFI program" grep -q "Aarch64\|aarch64\|ARM64" <(file "$tmp/boot.efi")
        mcopy -i "$esp" ::/EFI/BOOT/grubenv "$tmp/grubenv" 2>/dev/null || true
        expect "ESP: grubenv is 1024 bytes" test "$(stat -c %s "$tmp/grubenv" 2>/dev/null)" = 1024
        expect "ESP: grubenv boots A first (ORDER=A B, A_OK=1, B_OK=0)" \
            bash -c "grub-editenv '$tmp/grubenv' list | tr '\n' ' ' | grep -q 'ORDER=A B A_OK=1 A_TRY=0 B_OK=0 B_TRY=0'"
        ;;
    tryboot)
        for f in start4.elf fixup4.dat config.txt tryboot.txt slot-a/vmlinuz slot-a/initrd.img \
            "slot-a/$(basename "$DTB")" slot-a/cmdline.txt; do
            expect "boot: $f" mcopy -i "$esp" "::/$f" "$tmp/f"
        done
        expect "boot: config.txt boots slot-a/" bash -c "mtype -i '$esp' ::/config.txt | grep -qx 'os_prefix=slot-a/'"
        expect "boot: tryboot.txt tries slot-b/" bash -c "mtype -i '$esp' ::/tryboot.txt | grep -qx 'os_prefix=slot-b/'"
        ;;
esac

# --- slot A ------------------------------------------------------------------------------
a="$(fs "$PART_A")"
dcat() { debugfs -R "cat $2" "$1" 2>/dev/null; }
dexists() { debugfs -R "stat $2" "$1" 2>&1 | grep -q "^Inode:"; }
expect "slot A: label rootfs, ext4" bash -c "dumpe2fs -h '$a' 2>/dev/null | grep -q 'volume name:.*rootfs'"
expect "slot A equals rootfs.ext4" cmp -n "$(stat -c %s "$out/rootfs.ext4")" "$out/rootfs.ext4" \
    <(dd if="$disk" bs=1M skip="${PART_START_MIB[PART_A]}" count=$(( ($(stat -c %s "$out/rootfs.ext4") + 1048575) / 1048576 )) status=none)
dcat "$a" /usr/bin/lanbox >"$tmp/lanbox"
expect "slot A: /usr/bin/lanbox is the build's (sha256 $(manifest_get lanbox | cut -c1-12)...)" \
    test "$(sha256sum <"$tmp/lanbox" | cut -d' ' -f1)" = "$(manifest_get lanbox)"
expect "slot A: lanbox is a static aarch64 program" bash -c "file '$tmp/lanbox' | grep -q 'ARM aarch64.*statically linked'"
for u in lanbox.service lanbox.socket lanbox-http.socket lanbox-mark-good.service; do
    expect "slot A: unit $u" dexists "$a" "/usr/lib/systemd/system/$u"
done
for w in multi-user.target.wants/lanbox.service sockets.target.wants/lanbox.socket \
    sockets.target.wants/lanbox-http.socket multi-user.target.wants/lanbox-mark-good.service; do
    expect "slot A: enabled $w" dexists "$a" "/etc/systemd/system/$w"
done
expect "slot A: lanbox.service drop-in (reboot when lanbox cannot start)" \
    bash -c "debugfs -R 'cat /etc/systemd/system/lanbox.service.d/image.conf' '$a' 2>/dev/null | grep -q StartLimitAction=reboot"
dcat "$a" /etc/systemd/system/lanbox.service.d/image.conf >"$tmp/lanbox-dropin.conf"
dcat "$a" /usr/lib/systemd/system/lanbox.service >"$tmp/lanbox.service"
dcat "$a" /usr/lib/systemd/system/lanbox-mark-good.service >"$tmp/lanbox-mark-good.service"
expect "slot A: lanbox and mark-good run as static users (RAUC's D-Bus refuses a DynamicUser)" \
    bash -c "grep -qx 'User=lanbox' '$tmp/lanbox.service' && grep -qx 'User=lanbox-update' '$tmp/lanbox-mark-good.service' && ! grep -q '^DynamicUser=yes' '$tmp/lanbox.service' '$tmp/lanbox-mark-good.service'"
expect "slot A: users lanbox and lanbox-update in /etc/passwd" \
    bash -c "debugfs -R 'cat /etc/passwd' '$a' 2>/dev/null | grep -q '^lanbox:' && debugfs -R 'cat /etc/passwd' '$a' 2>/dev/null | grep -q '^lanbox-update:'"
expect "slot A: lanbox's reboot request goes through /run/lanbox/reboot" \
    grep -qx 'Environment="LANBOX_UPDATE_REBOOT=touch /run/lanbox/reboot"' "$tmp/lanbox-dropin.conf"
expect "slot A: lanbox's configuration is on the data partition (LANBOX_CONFIG= empty: DIR/lanbox.toml)" grep -qx 'Environment=LANBOX_CONFIG=' "$tmp/lanbox-dropin.conf"
expect "slot A: lanbox sees /proc/sys (the boot ID tells an update's reboot)" grep -qx 'ProcSubset=all' "$tmp/lanbox-dropin.conf"
for u in lanbox-reboot.path lanbox-reboot.service; do
    expect "slot A: unit $u" dexists "$a" "/usr/lib/systemd/system/$u"
done
expect "slot A: enabled multi-user.target.wants/lanbox-reboot.path" dexists "$a" /etc/systemd/system/multi-user.target.wants/lanbox-reboot.path
expect "slot A: lanbox-reboot.path watches /run/lanbox/reboot" \
    bash -c "debugfs -R 'cat /usr/lib/systemd/system/lanbox-reboot.path' '$a' 2>/dev/null | grep -qx 'PathExists=/run/lanbox/reboot'"
dcat "$a" /etc/rauc/system.conf >"$tmp/system.conf"
expect "slot A: rauc system.conf compatible=$COMPATIBLE" grep -qx "compatible=$COMPATIBLE" "$tmp/system.conf"
expect "slot A: rauc system.conf bootloader for $BOOT" grep -qx "bootloader=$( [ "$BOOT" = grub ] && echo grub || echo custom)" "$tmp/system.conf"
expect "slot A: rauc system.conf accepts verity bundles only" grep -qx "bundle-formats=-plain" "$tmp/system.conf"
expect "slot A: rauc system.conf pre-install handler" grep -qx "pre-install=/usr/lib/lanbox-image/pre-install" "$tmp/system.conf"
dcat "$a" /etc/rauc/keyring.pem >"$tmp/keyring.pem"
expect "slot A: /etc/rauc/keyring.pem is $(basename "$keyring")" cmp "$tmp/keyring.pem" "$keyring"
expect "slot A: rauc" dexists "$a" /usr/bin/rauc
expect "slot A: rauc D-Bus service" dexists "$a" /usr/share/dbus-1/system-services/de.pengutronix.rauc.service
for f in /boot/vmlinuz /boot/initrd.img /usr/lib/lanbox-image/pre-install; do
    expect "slot A: $f" dexists "$a" "$f"
done
for f in NotoSans-Regular.ttf NotoSans-Bold.ttf NotoSansArabic-Regular.ttf NotoSansCJK-Regular.ttc NotoColorEmoji.ttf; do
    expect "slot A: font $f" bash -c "{ debugfs -R 'ls -p /usr/share/fonts/truetype/noto' '$a'; debugfs -R 'ls -p /usr/share/fonts/opentype/noto' '$a'; } 2>/dev/null | grep -q '/$f/'"
done
expect "slot A: fstab mounts the data partition on /var/lib" bash -c "debugfs -R 'cat /etc/fstab' '$a' 2>/dev/null | grep -q '^LABEL=lanbox-data /var/lib ext4'"
expect "slot A: the data partition grows at boot (repart.d, x-systemd.growfs)" bash -c "debugfs -R 'cat /usr/lib/repart.d/40-data.conf' '$a' 2>/dev/null | grep -q '^Type=linux-generic' && ! debugfs -R 'cat /usr/lib/repart.d/40-data.conf' '$a' 2>/dev/null | grep -q SizeMax && debugfs -R 'cat /etc/fstab' '$a' 2>/dev/null | grep -q 'x-systemd.growfs' && debugfs -R 'stat /usr/bin/systemd-repart' '$a' 2>/dev/null | grep -q 'Type: regular'"
expect "slot A: /var/lib is empty (a mount point)" test "$(debugfs -R 'ls -p /var/lib' "$a" 2>/dev/null | grep '^/' | grep -cv '/\.\{1,2\}//$')" -eq 0
expect "slot A: IMAGE_VERSION=$(manifest_get version)" bash -c "debugfs -R 'cat /usr/lib/os-release' '$a' 2>/dev/null | grep -qx 'IMAGE_VERSION=$(manifest_get version)'"
expect "slot A: no documentation, no apt lists" bash -c "! debugfs -R 'stat /usr/share/doc' '$a' 2>&1 | grep -q '^Inode:'"

# --- data --------------------------------------------------------------------------------
d="$(fs "$PART_DATA")"
expect "data: label lanbox-data" bash -c "dumpe2fs -h '$d' 2>/dev/null | grep -q 'volume name:.*lanbox-data'"
expect "data: private/ mode 0700 (StateDirectory of an older image's DynamicUser lanbox, for a fallback)" \
    bash -c "debugfs -R 'stat /private' '$d' 2>/dev/null | grep -q 'Mode:  0700'"
expect "data: rauc/" dexists "$d" /rauc
expect "slot B is empty until the first update" bash -c "! dumpe2fs -h '$(fs "$PART_B")' >/dev/null 2>&1"

# --- bundle ------------------------------------------------------------------------------
bundle="${2:-$(ls -t "$out"/lanbox-"$BOARD_NAME"-*.raucb 2>/dev/null | head -n1)}"
if [ -z "$bundle" ] || [ ! -f "$bundle" ]; then
    bad "no bundle (image/bundle.sh $BOARD_NAME)"
else
    rauc info --keyring="$keyring" --output-format=shell "$bundle" >"$tmp/info" 2>/dev/null || true
    expect "bundle: rauc info --keyring accepts $(basename "$bundle")" grep -q "^RAUC_MF_COMPATIBLE='$COMPATIBLE'" "$tmp/info"
    expect "bundle: format verity" bash -c "rauc info --keyring='$keyring' '$bundle' 2>/dev/null | grep -qi 'format:.*verity'"
    expect "bundle: version $(manifest_get version) (the image's)" grep -q "^RAUC_MF_VERSION='$(manifest_get version)'" "$tmp/info"
    expect "bundle: one image, for the rootfs slot class" grep -q "^RAUC_IMAGE_CLASS_0='rootfs'" "$tmp/info"
    other="${IMAGE_OUT:-$REPO/target-image}/other-key"
    [ -f "$other/signing.cert.pem" ] || "$here/keys.sh" --other "$other" >/dev/null
    refuse "bundle: refused against another CA" rauc info --keyring="$other/ca.cert.pem" "$bundle"
    # A small bundle signed by the other key: the signature check does not depend on the size.
    mkdir -p "$tmp/content"
    head -c 65536 /dev/urandom >"$tmp/content/rootfs.ext4"
    printf '[update]\ncompatible=%s\nversion=999\n\n[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.ext4\n' \
        "$COMPATIBLE" >"$tmp/content/manifest.raucm"
    rauc bundle --cert="$other/signing.cert.pem" --key="$other/signing.key.pem" "$tmp/content" "$tmp/other.raucb" >/dev/null 2>&1 || true
    expect "bundle: made one signed by another key" rauc info --keyring="$other/ca.cert.pem" "$tmp/other.raucb"
    refuse "bundle: refused when signed by another key" rauc info --keyring="$keyring" "$tmp/other.raucb"
    # Unsigned: the bundle's squashfs without the CMS signature and its size trailer.
    size="$(stat -c %s "$bundle")"
    sig="$(tail -c 8 "$bundle" | od -An -t u8 --endian=big | tr -d ' ')"
    head -c $((size - 8 - sig)) "$bundle" >"$tmp/unsigned.raucb"
    refuse "bundle: refused without a signature" rauc info --keyring="$keyring" "$tmp/unsigned.raucb"
    rm -f "$tmp/unsigned.raucb"
fi

# --- downgrade handler (as RAUC runs it: the bundle mounted, its manifest inside) ------------
printf 'IMAGE_VERSION=0.2.0.1764950000\n' >"$tmp/os-release"
h="$here/rootfs/pre-install"
pre() {
    mkdir -p "$tmp/mnt"
    if [ -n "$1" ]; then v="version=$1"; else v=""; fi
    printf '[update]\ncompatible=%s\n%s\n\n[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.ext4\n' "$COMPATIBLE" "$v" >"$tmp/mnt/manifest.raucm"
    env -u RAUC_MF_VERSION LANBOX_OS_RELEASE="$tmp/os-release" RAUC_BUNDLE_MOUNT_POINT="$tmp/mnt" "$h"
}
refuse "pre-install: refuses 0.1.9.1799999999 on 0.2.0.1764950000" pre 0.1.9.1799999999
refuse "pre-install: refuses 0.2.0.1764949999" pre 0.2.0.1764949999
expect "pre-install: accepts the same version" pre 0.2.0.1764950000
expect "pre-install: accepts 0.2.0.1764950001" pre 0.2.0.1764950001
expect "pre-install: accepts 0.10.0.1 (numeric, not text, order)" pre 0.10.0.1
refuse "pre-install: refuses a bundle without a version" pre ""

if [ "$BOOT" = tryboot ]; then
    expect "tryboot backend: state machine (image/rootfs/tryboot-test.sh)" "$here/rootfs/tryboot-test.sh"
fi

if [ "$failures" -gt 0 ]; then
    echo "check: $failures failed ($((SECONDS - start)) s)" >&2
    exit 1
fi
echo "check: all passed ($((SECONDS - start)) s)"
