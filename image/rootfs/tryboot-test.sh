#!/bin/sh
# Exercises image/rootfs/tryboot-backend's state machine on a fake boot partition, the way RAUC
# and the firmware would use it: install to B, tryboot into B, commit with mark-good; then an
# update that is never marked good, and the plain reboot that returns to the committed slot.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
t="$(mktemp -d)"
trap 'rm -rf "$t"' EXIT
export LANBOX_TRYBOOT_BOOT="$t/boot" LANBOX_TRYBOOT_CMDLINE="$t/cmdline" LANBOX_TRYBOOT_REBOOT_PARAM="$t/run/reboot-param"
b="$here/tryboot-backend"
mkdir -p "$t/boot"
printf '[all]\narm_64bit=1\nos_prefix=slot-a/\nkernel=vmlinuz\n' >"$t/boot/config.txt"
echo "root=PARTLABEL=rootfs-a ro rauc.slot=A" >"$t/cmdline"
fail() { echo "tryboot-test: $*" >&2; exit 1; }
is() { got="$("$b" "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//')"; [ "$got" = "$want" ] || fail "$* gave '$got', want '$want'"; }
# firmware: which slot boots (tryboot once if asked for), then the reboot parameter is gone.
boot() {
    if [ "$(cat "$t/run/reboot-param" 2>/dev/null)" = "0 tryboot" ]; then f=tryboot.txt; else f=config.txt; fi
    rm -f "$t/run/reboot-param"
    s="$(sed -n 's|^os_prefix=slot-\(.\)/$|\1|p' "$t/boot/$f" | tr ab AB)"
    echo "root=PARTLABEL=rootfs-x ro rauc.slot=$s" >"$t/cmdline"
}
want=A; is get-current
want=A; is get-primary
want=good; is get-state A
want=bad; is get-state B
# rauc install into B: mark B bad while writing, then set-primary B.
"$b" set-state B bad
"$b" set-primary B
want=B; is get-primary
[ "$(cat "$t/run/reboot-param")" = "0 tryboot" ] || fail "no tryboot reboot parameter"
grep -qx 'os_prefix=slot-b/' "$t/boot/tryboot.txt" || fail "tryboot.txt does not name slot-b/"
grep -qx 'os_prefix=slot-a/' "$t/boot/config.txt" || fail "config.txt changed before the try"
boot
want=B; is get-current
"$b" set-state B good
grep -qx 'os_prefix=slot-b/' "$t/boot/config.txt" || fail "mark-good on the tried slot did not commit"
want=B; is get-primary
boot
want=B; is get-current
# A bad update into A: tried once, never marked good, the plain reboot returns to B.
"$b" set-state A bad
"$b" set-primary A
want=A; is get-primary
boot
want=A; is get-current
boot
want=B; is get-current
grep -qx 'os_prefix=slot-b/' "$t/boot/config.txt" || fail "config.txt left slot B"
# RAUC marks the failed slot bad; no tryboot is pending any more.
"$b" set-state A bad
want=B; is get-primary
[ ! -e "$t/run/reboot-param" ] || fail "a tryboot is still pending"
# mark-good from the committed slot commits nothing else.
"$b" set-state B good
grep -qx 'os_prefix=slot-b/' "$t/boot/config.txt" || fail "config.txt changed"
echo "tryboot-test: ok"
