#!/usr/bin/env bash
# mmdebstrap extract hook of image/build.sh: turns the extracted (never configured) arm64
# Debian tree into the lanbox root filesystem and writes the filesystem images.
#
#   rootfs.sh ROOT WORK
#
# It runs inside mmdebstrap's user namespace (--mode=unshare), where files look owned by root,
# so mke2fs -d records the right owners without real root. No arm64 binary is executed:
# binfmt_misc is not available here, so everything maintainer scripts would do is done from
# the host (base-passwd, systemd-sysusers --root, systemctl --root, depmod -b).
# WORK/env.sh (written by build.sh) gives BOARD_CONF, VERSION, KEYRING, LANBOX, FONTS_RS.
# Outputs in WORK: rootfs.ext4, data.ext4, boot/ (kernel, initrd, dtb for the boot partition).
set -euo pipefail
root="$1" work="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091
. "$work/env.sh"
# shellcheck disable=SC1090
. "$BOARD_CONF"
say() { printf 'rootfs: %s\n' "$*" >&2; }

kver="$(ls "$root/usr/lib/modules")"
[ "$(echo "$kver" | wc -l)" -eq 1 ] || { say "expected one kernel, found: $kver"; exit 1; }

# --- kernel modules: keep what the board names (and their dependencies) -------------------
depmod -b "$root" "$kver"
closure() {
    local m
    for m in "$@"; do
        modprobe -d "$root" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
    done | awk '!seen[$0]++'
}
mapfile -t initramfs_mods < <(closure $INITRAMFS_MODULES)
mapfile -t rootfs_mods < <(closure $INITRAMFS_MODULES $ROOTFS_MODULES)
keep="$work/modules.keep"
printf '%s\n' "${rootfs_mods[@]}" | sed "s|^$root||; s|^/lib/|/usr/lib/|" | sort -u >"$keep"
find "$root/usr/lib/modules/$kver/kernel" -type f -name '*.ko*' | sed "s|^$root||" | sort \
    | comm -23 - "$keep" | sed "s|^|$root|" | xargs -r rm -f
find "$root/usr/lib/modules/$kver/kernel" -type d -empty -delete
depmod -b "$root" "$kver"
say "kernel $kver, $(wc -l <"$keep") modules kept"

# --- initramfs: busybox, the root-finding modules (uncompressed for busybox insmod), /init ---
ird="$work/initramfs"
rm -rf "$ird"
mkdir -p "$ird"/{bin,dev,proc,sys,etc,lib/modules,newroot}
cp "$root/usr/bin/busybox" "$ird/bin/busybox"
: >"$ird/etc/modules"
for path in "${initramfs_mods[@]}"; do
    path="${path#"$root"}"
    f="$root/usr${path#/usr}"
    name="$(basename "$f")"
    case "$f" in
        *.xz) xz -dc "$f" >"$ird/lib/modules/${name%.xz}"; name="${name%.xz}" ;;
        *.zst) zstd -qdc "$f" >"$ird/lib/modules/${name%.zst}"; name="${name%.zst}" ;;
        *.gz) gzip -dc "$f" >"$ird/lib/modules/${name%.gz}"; name="${name%.gz}" ;;
        *) cp "$f" "$ird/lib/modules/$name" ;;
    esac
    echo "$name" >>"$ird/etc/modules"
done
install -m 0755 "$here/rootfs/init" "$ird/init"
(cd "$ird" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -9n) >"$root/boot/initrd.img"
rm -rf "$ird"
ln -sf "vmlinuz-$kver" "$root/boot/vmlinuz"
rm -f "$root/boot/System.map-$kver" "$root/boot/config-$kver"

# --- boot files for boards whose firmware reads the kernel from the boot partition ----------
mkdir -p "$work/boot"
cp "$root/boot/vmlinuz-$kver" "$work/boot/vmlinuz"
cp "$root/boot/initrd.img" "$work/boot/initrd.img"
if [ -n "${DTB:-}" ]; then
    cp "$root/usr/lib/linux-image-$kver/$DTB" "$work/boot/$(basename "$DTB")"
    # Also in the slot: an update brings its own device tree (tryboot-post-install copies it).
    install -d "$root/boot/dtb"
    cp "$root/usr/lib/linux-image-$kver/$DTB" "$root/boot/dtb/"
fi
if [ -d "$root/usr/lib/raspi-firmware" ]; then
    mkdir -p "$work/boot/firmware"
    cp -a "$root/usr/lib/raspi-firmware/." "$work/boot/firmware/"
    rm -rf "$root/usr/lib/raspi-firmware"
fi

# --- prune: documentation, locales, unused fonts, device trees, busybox, package caches -------
rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion,zsh,fish,gtk-doc,menu} \
    "$root/usr/lib/linux-image-$kver" "$root/usr/bin/busybox" \
    "$root"/var/cache/apt "$root"/var/lib/apt/lists "$root"/var/cache/debconf
# Fonts: exactly the files src/export/fonts.rs looks for (required and optional).
mapfile -t fonts < <(grep -o 'want("[^"]*"' "$FONTS_RS" | sed 's/want("//; s/"$//' | sort -u)
[ "${#fonts[@]}" -gt 3 ] || { say "no font list in $FONTS_RS"; exit 1; }
fkeep="$work/fonts.keep"
printf '%s\n' "${fonts[@]}" >"$fkeep"
find "$root/usr/share/fonts" -type f | while read -r f; do
    grep -qxF "$(basename "$f")" "$fkeep" || rm -f "$f"
done
find "$root/usr/share/fonts" -depth -type d -empty -delete
find "$root/etc/fonts" -maxdepth 0 -type d -exec rm -rf {} + 2>/dev/null || true
say "fonts kept: $(find "$root/usr/share/fonts" -type f -printf '%f ')"

# --- what maintainer scripts would have done ------------------------------------------------
cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
awk -F: '{ print $1 ":*:20000:0:99999:7:::" }' "$root/etc/passwd" >"$root/etc/shadow"
awk -F: '{ print $1 ":*::" }' "$root/etc/group" >"$root/etc/gshadow"
chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"
# The host's systemd-sysusers (252) does not know trixie's "u!" (locked user; every system
# user it writes is locked anyway): read the files with that one modifier changed, then put
# the packaged files back untouched.
# lanbox.service and lanbox-mark-good.service run as static system users (systemd/lanbox.sysusers):
# with DynamicUser=yes dbus-daemon (trixie) closes the connection ("The connection is closed",
# seen under qemu), so neither the update API nor `rauc status mark-good` would reach RAUC.
install -m 0644 "$REPO/systemd/lanbox.sysusers" "$root/usr/lib/sysusers.d/lanbox.conf"
sysu="$(mktemp -d)"
cp -a "$root/usr/lib/sysusers.d/." "$sysu/"
sed -i 's/^u! /u /' "$root"/usr/lib/sysusers.d/*.conf
systemd-sysusers --root="$root" 2>&1 | grep -v "^Creating " >&2 || true
for u in lanbox-update lanbox; do
    grep -q "^$u:" "$root/etc/passwd" || { say "systemd-sysusers made no $u user"; exit 1; }
done
rm -rf "$root/usr/lib/sysusers.d"
mv "$sysu" "$root/usr/lib/sysusers.d"
chmod 0755 "$root/usr/lib/sysusers.d"
echo lanbox >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tlanbox\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
: >"$root/etc/machine-id"
# libnss-systemd resolves DynamicUser= users: dbus-daemon must know lanbox-mark-good's user,
# or it closes the connection and `rauc status mark-good` cannot reach RAUC.
cat >"$root/etc/nsswitch.conf" <<NSS
passwd: files systemd
group: files systemd
shadow: files systemd
gshadow: files systemd
hosts: files dns
networks: files
protocols: files
services: files
NSS
# What systemd-tmpfiles would otherwise try (and fail) to make on the read-only root.
ln -sf ../proc/self/mounts "$root/etc/mtab"
install -d -m 0700 "$root/etc/credstore" "$root/etc/credstore.encrypted"
install -d "$root/srv"
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
ln -sf /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"

# --- mounts: read-only root, data partition on /var/lib, tmpfs for the rest of /var ----------
esp_mount=""
[ "$BOOT" = grub ] && esp_mount="LABEL=ESP /boot/efi vfat noauto,nofail,x-systemd.automount,umask=0077,noatime 0 0"
[ "$BOOT" = tryboot ] && esp_mount="LABEL=BOOT /boot/firmware vfat noauto,nofail,x-systemd.automount,umask=0077,noatime 0 0"
cat >"$root/etc/fstab" <<FSTAB
# The root filesystem (a RAUC slot) is mounted read-only by the initramfs (root= from the
# bootloader); it stays read-only. Everything that must survive lives on the data partition.
LABEL=lanbox-data /var/lib ext4 defaults,noatime,nosuid,nodev,x-systemd.growfs 0 2
$esp_mount
tmpfs /tmp tmpfs mode=1777,nosuid,nodev,size=25% 0 0
tmpfs /var/tmp tmpfs mode=1777,nosuid,nodev,size=25% 0 0
tmpfs /var/log tmpfs mode=0755,nosuid,nodev,size=64M 0 0
tmpfs /var/cache tmpfs mode=0755,nosuid,nodev,size=64M 0 0
FSTAB
mkdir -p "$root/boot/efi" "$root/boot/firmware"

# --- the data partition fills the disk: systemd-repart grows it at boot, systemd-growfs its ext4
# The image is as small as the board descriptor says; written to a 32 GB card, the rest of the
# card would stay unused. repart matches existing partitions by type and order, so every
# partition of the GPT gets a definition; all but the data partition keep their exact size.
# repart only grows into free space right after a partition, and data is the last one.
install -d "$root/usr/lib/repart.d" "$root/etc/systemd/system/systemd-repart.service.d"
n=0
for p in $PARTITIONS; do
    IFS=: read -r pname pmib pkind <<<"$p"
    n=$((n + 1))
    {
        echo "# $pname, from the board's PARTITIONS (image/rootfs.sh)."
        echo "[Partition]"
        [ "$pkind" = esp ] && echo "Type=esp" || echo "Type=linux-generic"
        if [ "$pkind" = data ]; then
            echo "# No size limit: grows into the rest of the disk."
        else
            echo "SizeMinBytes=${pmib}M"
            echo "SizeMaxBytes=${pmib}M"
        fi
    } >"$root/usr/lib/repart.d/$((n * 10))-$pname.conf"
done
# The partition grows before /var/lib is mounted, so x-systemd.growfs then grows the filesystem
# (online, at every boot; a no-op once it fills the partition).
printf '[Unit]\nBefore=var-lib.mount systemd-growfs@var-lib.service\n' \
    >"$root/etc/systemd/system/systemd-repart.service.d/image.conf"

# --- lanbox -------------------------------------------------------------------------------
install -m 0755 "$LANBOX" "$root/usr/bin/lanbox"
for u in "$REPO"/systemd/*.service "$REPO"/systemd/*.socket; do
    install -m 0644 "$u" "$root/usr/lib/systemd/system/$(basename "$u")"
done
install -d "$root/etc/systemd/system/lanbox.service.d" "$root/etc/systemd/system/systemd-networkd-wait-online.service.d" \
    "$root/etc/systemd/network" "$root/etc/systemd/journald.conf.d" "$root/etc/lanbox"
install -m 0644 "$here/rootfs/lanbox-image.conf" "$root/etc/systemd/system/lanbox.service.d/image.conf"
install -m 0644 "$here/rootfs/lanbox-reboot.path" "$here/rootfs/lanbox-reboot.service" "$root/usr/lib/systemd/system/"
install -m 0644 "$here/rootfs/wait-online.conf" "$root/etc/systemd/system/systemd-networkd-wait-online.service.d/image.conf"
install -m 0644 "$here/rootfs/80-wired.network" "$root/etc/systemd/network/80-wired.network"
install -m 0644 "$here/rootfs/journald.conf" "$root/etc/systemd/journald.conf.d/image.conf"

# --- RAUC ---------------------------------------------------------------------------------
install -d "$root/etc/rauc" "$root/usr/lib/lanbox-image"
install -m 0644 "$KEYRING" "$root/etc/rauc/keyring.pem"
install -m 0755 "$here/rootfs/pre-install" "$root/usr/lib/lanbox-image/pre-install"
{
    echo "# RAUC on the lanbox image for $BOARD_NAME (image/rootfs.sh). Slots are found by GPT label."
    echo "[system]"
    echo "compatible=$COMPATIBLE"
    case "$BOOT" in
        grub) echo "bootloader=grub"; echo "grubenv=/boot/efi/EFI/BOOT/grubenv" ;;
        tryboot) echo "bootloader=custom" ;;
    esac
    echo "# Slot status, boot ids, install history: on the data partition, survives updates."
    echo "data-directory=/var/lib/rauc"
    echo "# Only verity bundles (dm-verity checked while installing); no plain bundles."
    echo "bundle-formats=-plain"
    echo
    echo "[keyring]"
    echo "path=/etc/rauc/keyring.pem"
    echo "check-purpose=codesign"
    echo
    echo "[handlers]"
    echo "# Refuses a bundle older than the running image."
    echo "pre-install=/usr/lib/lanbox-image/pre-install"
    if [ "$BOOT" = tryboot ]; then
        echo "# Copies the new slot's kernel, initramfs and device tree to the boot partition."
        echo "post-install=/usr/lib/lanbox-image/tryboot-post-install"
        echo
        echo "[custom]"
        echo "bootloader-custom-backend=/usr/lib/lanbox-image/tryboot-backend"
    fi
    echo
    echo "[slot.rootfs.0]"
    echo "device=/dev/disk/by-partlabel/rootfs-a"
    echo "type=ext4"
    echo "bootname=A"
    echo
    echo "[slot.rootfs.1]"
    echo "device=/dev/disk/by-partlabel/rootfs-b"
    echo "type=ext4"
    echo "bootname=B"
} >"$root/etc/rauc/system.conf"
if [ "$BOOT" = tryboot ]; then
    install -m 0755 "$here/rootfs/tryboot-backend" "$root/usr/lib/lanbox-image/tryboot-backend"
    install -m 0755 "$here/rootfs/tryboot-post-install" "$root/usr/lib/lanbox-image/tryboot-post-install"
fi

# --- version: os-release's IMAGE_ID/IMAGE_VERSION (the pre-install handler compares) ----------
sed -i '/^IMAGE_ID=/d; /^IMAGE_VERSION=/d' "$root/usr/lib/os-release"
printf 'IMAGE_ID=lanbox-%s\nIMAGE_VERSION=%s\n' "$BOARD_NAME" "$VERSION" >>"$root/usr/lib/os-release"

# --- units --------------------------------------------------------------------------------
systemctl --root="$root" set-default multi-user.target >/dev/null 2>&1
systemctl --root="$root" enable systemd-networkd.service systemd-resolved.service \
    systemd-timesyncd.service lanbox.socket lanbox-http.socket lanbox.service \
    lanbox-mark-good.service lanbox-reboot.path >/dev/null 2>&1
# Nobody logs in on the box.
systemctl --root="$root" mask getty@.service serial-getty@.service console-getty.service ldconfig.service >/dev/null 2>&1

# --- data partition: /var/lib's initial content; the root keeps an empty mount point ---------
rm -rf "$work/data"
mkdir -p "$work/data"
cp -a "$root/var/lib/." "$work/data/"
rm -rf "${root:?}/var/lib/"*
install -d -m 0700 "$work/data/private"
install -d -m 0755 "$work/data/rauc"
rm -rf "$work/data/lost+found"

# --- filesystem images (build.sh runs mmdebstrap with --skip=chroot/mount: nothing is mounted
# in the tree, /dev /proc /sys /run are empty directories) --------------------------------------------------------------------
used_kib="$(du -sk --apparent-size "$root" | cut -f1)"
# 15 % and 24 MiB headroom for ext4's own metadata, rounded up to 4 MiB.
size_mib=$(( (used_kib * 115 / 100 / 1024 + 24 + 3) / 4 * 4 ))
rm -f "$work/rootfs.ext4" "$work/data.ext4"
mke2fs -q -t ext4 -O ^has_journal -m 0 -L rootfs -d "$root" "$work/rootfs.ext4" "${size_mib}M"
mke2fs -q -t ext4 -m 1 -L lanbox-data -d "$work/data" "$work/data.ext4" "${DATA_MIB}M"
rm -rf "$work/data" "$keep" "$fkeep"
# Built without root, what this hook made belongs to a subordinate uid: let the user who runs
# build.sh read and delete it (inside the namespace the hook's files are root's; the user's
# own files there show as nobody and are left alone).
find "$work" -user 0 -type d -exec chmod a+rwx {} +
find "$work" -user 0 -type f -exec chmod a+r {} +
say "rootfs.ext4 ${size_mib} MiB (tree $((used_kib / 1024)) MiB), data.ext4 ${DATA_MIB} MiB"
