# Shared by image/build.sh and image/check.sh: the partition layout of a board descriptor,
# the boot partition of each boot method, and the disk assembly. Sourced, not run.

# Reads PARTITIONS (NAME:SIZE_MIB:KIND ...) into PART_NAME/PART_MIB/PART_KIND/PART_START_MIB
# (1-based like the partition numbers) and ESP_MIB, ROOTFS_MIB, DATA_MIB, PART_A, PART_B,
# PART_ESP, PART_DATA (partition numbers). The first partition starts at 1 MiB.
parse_partitions() {
    PART_NAME=() PART_MIB=() PART_KIND=() PART_START_MIB=()
    local i=0 start=1 p name mib kind
    for p in $PARTITIONS; do
        IFS=: read -r name mib kind <<<"$p"
        i=$((i + 1))
        PART_NAME[$i]="$name" PART_MIB[$i]="$mib" PART_KIND[$i]="$kind" PART_START_MIB[$i]="$start"
        start=$((start + mib))
        case "$kind" in
            esp) ESP_MIB="$mib" PART_ESP=$i ;;
            rootfs) ROOTFS_MIB="$mib"; if [ -z "${PART_A:-}" ]; then PART_A=$i; else PART_B=$i; fi ;;
            data) DATA_MIB="$mib" PART_DATA=$i ;;
            *) echo "unknown partition kind $kind in $p" >&2; return 1 ;;
        esac
    done
    PART_COUNT=$i
    DISK_MIB=$((start + 1))
    [ -n "${PART_ESP:-}" ] && [ -n "${PART_A:-}" ] && [ -n "${PART_B:-}" ] && [ -n "${PART_DATA:-}" ] \
        || { echo "PARTITIONS needs esp, two rootfs and data" >&2; return 1; }
}

# GPT partition type of each kind: the EFI system partition, and plain Linux data for the slots
# and the data partition (not the "root arm64" type: nothing should auto-mount a slot).
part_type() {
    case "$1" in
        esp) echo C12A7328-F81F-11D2-BA4B-00A0C93EC93B ;;
        *) echo 0FC63DAF-8483-4772-8E79-3D69D8477DE4 ;;
    esac
}

# The sfdisk script of the board's GPT: also what check.sh compares the image against.
sfdisk_script() {
    local i
    echo "label: gpt"
    echo "unit: sectors"
    echo "first-lba: 2048"
    for i in $(seq 1 "$PART_COUNT"); do
        echo "start=$((PART_START_MIB[i] * 2048)), size=$((PART_MIB[i] * 2048)), type=$(part_type "${PART_KIND[i]}"), name=\"${PART_NAME[i]}\""
    done
}

make_disk() {
    local disk="$1" work="$2"
    rm -f "$disk"
    truncate -s "${DISK_MIB}M" "$disk"
    sfdisk_script | sfdisk --quiet --no-reread --no-tell-kernel "$disk"
    dd if="$work/boot.vfat" of="$disk" bs=1M seek="${PART_START_MIB[PART_ESP]}" conv=notrunc,sparse status=none
    dd if="$work/rootfs.ext4" of="$disk" bs=1M seek="${PART_START_MIB[PART_A]}" conv=notrunc,sparse status=none
    dd if="$work/data.ext4" of="$disk" bs=1M seek="${PART_START_MIB[PART_DATA]}" conv=notrunc,sparse status=none
}

# GRUB's arm64 EFI modules: Debian 12's grub-efi-arm64-bin (the same GRUB 2.06 as the host's
# grub-mkstandalone), extracted once with mmdebstrap into the output's cache.
grub_modules() {
    local cache="${IMAGE_OUT:-$REPO/target-image}/cache/grub-arm64-efi"
    if [ ! -f "$cache/arm64-efi/kernel.img" ]; then
        local tmp
        tmp="$(mktemp -d)"
        mmdebstrap --quiet --mode="${MMDEBSTRAP_MODE:-unshare}" --variant=extract --architectures=arm64 \
            --include=grub-efi-arm64-bin bookworm "$tmp/grub.tar" >&2
        mkdir -p "$cache"
        tar -xf "$tmp/grub.tar" -C "$tmp" ./usr/lib/grub/arm64-efi
        rm -rf "$cache/arm64-efi"
        mv "$tmp/usr/lib/grub/arm64-efi" "$cache/arm64-efi"
        rm -rf "$tmp"
    fi
    echo "$cache/arm64-efi"
}

# The ESP for BOOT=grub: a standalone GRUB (its script in its memdisk) as the removable-media
# path EFI/BOOT/BOOTAA64.EFI, and the grubenv RAUC's grub backend writes. The script is RAUC's
# documented A/B logic: the first slot in ORDER with <slot>_OK=1 and <slot>_TRY=0 boots and
# gets <slot>_TRY=1; `rauc status mark-good` (lanbox-mark-good.service) sets it back to 0.
# A slot that boots and is never marked good is skipped on the next boot.
build_grub_esp() {
    local work="$1" mods
    mods="$(grub_modules)"
    sed -e "s/@ESP@/$PART_ESP/g; s/@A@/$PART_A/g; s/@B@/$PART_B/g" \
        -e "s/@CMDLINE@/console=$CONSOLE $CMDLINE_EXTRA/g" "$here/rootfs/grub.cfg" >"$work/grub.cfg"
    grub-mkstandalone -O arm64-efi -d "$mods" -o "$work/BOOTAA64.EFI" \
        --modules="part_gpt fat ext2 linux loadenv regexp test echo normal" \
        --locales= --fonts= --themes= \
        "boot/grub/grub.cfg=$work/grub.cfg"
    grub-editenv "$work/grubenv" create
    grub-editenv "$work/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
    mmd -i "$work/boot.vfat" ::/EFI ::/EFI/BOOT
    mcopy -i "$work/boot.vfat" "$work/BOOTAA64.EFI" "$work/grubenv" ::/EFI/BOOT/
    rm -f "$work/BOOTAA64.EFI" "$work/grubenv" "$work/grub.cfg"
}

# The boot partition for BOOT=tryboot (Raspberry Pi): firmware at the top, each slot's kernel,
# initramfs, device tree and cmdline.txt in slot-a/ and slot-b/ (the firmware's os_prefix).
# config.txt boots the primary slot; tryboot.txt (read once after `reboot "0 tryboot"`) the
# other. image/rootfs/tryboot-backend is RAUC's side of this.
build_tryboot_boot() {
    local work="$1" f
    local img="$work/boot.vfat"
    for f in "$work/boot/firmware/"*; do
        case "$(basename "$f")" in
            start4*.elf|fixup4*.dat|bootcode.bin|LICENCE*) mcopy -i "$img" "$f" ::/ ;;
        esac
    done
    mmd -i "$img" ::/slot-a ::/slot-b
    mcopy -i "$img" "$work/boot/vmlinuz" "$work/boot/initrd.img" "$work/boot/$(basename "$DTB")" ::/slot-a/
    printf 'root=PARTLABEL=rootfs-a ro rauc.slot=A console=%s %s rootwait\n' "$CONSOLE" "$CMDLINE_EXTRA" >"$work/cmdline.txt"
    mcopy -i "$img" "$work/cmdline.txt" ::/slot-a/cmdline.txt
    tryboot_config A >"$work/config.txt"
    tryboot_config B >"$work/tryboot.txt"
    mcopy -i "$img" "$work/config.txt" "$work/tryboot.txt" ::/
    rm -rf "$work/boot" "$work/cmdline.txt" "$work/config.txt" "$work/tryboot.txt"
}

tryboot_config() {
    local slot lower
    slot="$1"
    lower="$(echo "$slot" | tr AB ab)"
    cat <<CFG
# lanbox image, Raspberry Pi 4: boots slot $slot. Written by image/build.sh and by RAUC's
# tryboot backend (image/rootfs/tryboot-backend); config.txt is the primary slot, tryboot.txt
# the slot to try once.
[all]
arm_64bit=1
enable_uart=1
os_prefix=slot-$lower/
kernel=vmlinuz
initramfs initrd.img followkernel
disable_overscan=1
CFG
}
