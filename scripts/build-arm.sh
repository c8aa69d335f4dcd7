#!/usr/bin/env bash
# Build a fully static release binary of lanbox for an ARM board, check it, strip a copy.
#
# Usage:
#   scripts/build-arm.sh [options] TARGET [-- CARGO_ARGS...]
#   scripts/build-arm.sh [options] --board NAME [-- CARGO_ARGS...]
#
#   TARGET               aarch64-unknown-linux-musl | armv7-unknown-linux-musleabihf
#                        (short forms: aarch64, arm64, armv7, armhf)
#   --board NAME         take the target from board/NAME.toml (scripts/board-info.py)
#   --manifest-path P    build another crate's Cargo.toml (default: this repository's);
#                        the repository's .cargo/config.toml still applies
#   --bin NAME           the binary to check (default: the package's only binary)
#   --small              size profile via CARGO_PROFILE_RELEASE_*: opt-level=z, fat LTO,
#                        codegen-units=1, panic=abort (overrides Cargo.toml's release profile)
#   --smoke              afterwards run `BIN --version` under qemu-user
#
# aarch64 uses plain cargo (rustup's prebuilt std, rust-lld, gcc-aarch64-linux-gnu for ring's C).
# armv7 has no prebuilt std in rustup: cargo zigbuild with -Zbuild-std under RUSTC_BOOTSTRAP=1.
# scripts/install-cross.sh installs everything either path needs. CARGO_TARGET_DIR is honoured.
#
# The binary is checked to be an ELF for the right machine with no dynamic section (no
# interpreter, no shared libraries), and a stripped copy is written to
# $CARGO_TARGET_DIR/dist/TARGET/BIN; that is the file to ship (scripts/build-deb.sh).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CROSS_HOME="${LANBOX_CROSS_HOME:-$HOME/.cache/lanbox-cross}"

die() { printf 'build-arm: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

target="" board="" manifest="$REPO/Cargo.toml" bin="" small=0 smoke=0
cargo_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --board) board="${2:?--board needs a name}"; shift 2 ;;
        --board=*) board="${1#*=}"; shift ;;
        --manifest-path) manifest="${2:?--manifest-path needs a path}"; shift 2 ;;
        --manifest-path=*) manifest="${1#*=}"; shift ;;
        --bin) bin="${2:?--bin needs a name}"; shift 2 ;;
        --bin=*) bin="${1#*=}"; shift ;;
        --small) small=1; shift ;;
        --smoke) smoke=1; shift ;;
        -h|--help) usage 0 ;;
        --) shift; cargo_args=("$@"); break ;;
        -*) echo "build-arm: unknown option $1" >&2; usage 2 ;;
        *) [ -z "$target" ] || die "more than one target given"; target="$1"; shift ;;
    esac
done

if [ -n "$board" ]; then
    [ -z "$target" ] || die "give either TARGET or --board, not both"
    target="$("$REPO/scripts/board-info.py" "$board" --get target)" || die "cannot read board $board"
    echo "build-arm: board $board -> $target"
fi
case "$target" in
    aarch64|arm64) target=aarch64-unknown-linux-musl ;;
    armv7|armhf) target=armv7-unknown-linux-musleabihf ;;
    aarch64-unknown-linux-musl|armv7-unknown-linux-musleabihf) ;;
    "") usage 2 ;;
    *) die "unsupported target $target" ;;
esac
[ -f "$manifest" ] || die "no $manifest"
manifest="$(cd "$(dirname "$manifest")" && pwd)/$(basename "$manifest")"

# Cargo reads .cargo/config.toml from the working directory upwards, not from the manifest's
# directory: build from the repository so its cross settings apply to any --manifest-path.
cd "$REPO"

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: run scripts/install-cross.sh"; }
need readelf
case "$target" in
    aarch64-*)
        machine=AArch64 qemu=qemu-aarch64-static
        need aarch64-linux-gnu-gcc
        rustup target list --installed | grep -qx "$target" \
            || die "rust target $target missing: run scripts/install-cross.sh"
        build=(cargo build)
        ;;
    armv7-*)
        machine=ARM qemu=qemu-arm-static
        # cargo-zigbuild finds zig as `python3 -m ziglang` when the venv's python comes first.
        [ -x "$CROSS_HOME/venv/bin/python" ] || die "no zig venv in $CROSS_HOME: run scripts/install-cross.sh"
        export PATH="$CROSS_HOME/venv/bin:$PATH"
        need cargo-zigbuild
        rustup component list --installed | grep -q '^rust-src' \
            || die "rust-src missing: run scripts/install-cross.sh"
        export RUSTC_BOOTSTRAP=1
        build=(cargo zigbuild "-Zbuild-std=std,panic_abort")
        ;;
esac

if [ "$small" -eq 1 ]; then
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
    export CARGO_PROFILE_RELEASE_LTO=fat
    export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
    export CARGO_PROFILE_RELEASE_PANIC=abort
fi

# Where the binary lands: cargo metadata knows the target directory (CARGO_TARGET_DIR or
# config) and the package's binaries.
read -r target_dir bins < <(cargo metadata --format-version 1 --no-deps --manifest-path "$manifest" \
    | python3 -c '
import json, sys
m = json.load(sys.stdin)
pkgs = m["packages"]
if len(pkgs) > 1:
    pkgs = [p for p in pkgs if p["manifest_path"] == sys.argv[1]] or pkgs
bins = [t["name"] for p in pkgs for t in p["targets"] if "bin" in t["kind"]]
print(m["target_directory"], ",".join(bins))
' "$manifest") || die "cargo metadata failed for $manifest"
if [ -z "$bin" ]; then
    case "$bins" in
        "") die "no binary target in $manifest" ;;
        *,*) die "several binaries ($bins): pick one with --bin" ;;
        *) bin="$bins" ;;
    esac
fi

echo "build-arm: ${build[*]} --release --target $target ($manifest)"
start=$SECONDS
"${build[@]}" --release --target "$target" --manifest-path "$manifest" --bin "$bin" "${cargo_args[@]}"
elapsed=$((SECONDS - start))

out="$target_dir/$target/release/$bin"
[ -f "$out" ] || die "expected binary at $out"

# --- checks ---------------------------------------------------------------
got_machine="$(readelf -h "$out" | sed -n 's/^ *Machine: *//p')"
[ "$got_machine" = "$machine" ] || die "$out is for '$got_machine', expected '$machine'"
if [ "$machine" = ARM ] && ! readelf -h "$out" | grep -q 'hard-float ABI'; then
    die "$out is not a hard-float (armhf) binary"
fi
dyn="$(readelf -d "$out")"
if ! grep -q 'There is no dynamic section' <<<"$dyn"; then
    printf '%s\n' "$dyn" | head -20 >&2
    die "$out has a dynamic section: not fully static"
fi
if readelf -l "$out" | grep -q 'program interpreter'; then
    die "$out requests a program interpreter: not fully static"
fi

# --- stripped copy ----------------------------------------------------------
dist="$target_dir/dist/$target"
mkdir -p "$dist"
if command -v llvm-strip >/dev/null 2>&1; then
    llvm-strip -o "$dist/$bin" "$out"
elif [ "$machine" = AArch64 ] && command -v aarch64-linux-gnu-strip >/dev/null 2>&1; then
    aarch64-linux-gnu-strip -o "$dist/$bin" "$out"
elif [ -x "$CROSS_HOME/venv/bin/python" ]; then
    "$CROSS_HOME/venv/bin/python" -m ziglang objcopy --strip-all "$out" "$dist/$bin"
else
    die "no strip tool for $machine (install llvm)"
fi

size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
unstripped=$(size "$out") stripped=$(size "$dist/$bin")
printf 'build-arm: %s: static %s ELF, built in %ds\n' "$target" "$machine" "$elapsed"
printf 'build-arm:   %-9s %10d bytes (%s)  %s\n' release "$unstripped" "$(mib "$unstripped")" "$out"
printf 'build-arm:   %-9s %10d bytes (%s)  %s\n' stripped "$stripped" "$(mib "$stripped")" "$dist/$bin"

if [ "$smoke" -eq 1 ]; then
    need "$qemu"
    echo "build-arm: $qemu $dist/$bin --version"
    "$qemu" "$dist/$bin" --version
fi
