#!/usr/bin/env python3
"""Read and check a board descriptor (board/NAME.toml).

    scripts/board-info.py rpi4                 # key=value lines (target, cache size, ...)
    scripts/board-info.py rpi4 --get target    # one value, for scripts
    scripts/board-info.py --check              # validate every descriptor in board/
    scripts/board-info.py rpi3-armv7 --dropin  # lanbox.service drop-in with the board's settings

BOARD is a descriptor name (board/BOARD.toml) or a path to a .toml file.
Needs Python >= 3.11 (tomllib). Exit status: 0 ok, 1 invalid descriptor, 2 usage.
"""
from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

BOARD_DIR = Path(__file__).resolve().parent.parent / "board"

TARGETS = {  # target triple -> Debian architecture
    "aarch64-unknown-linux-musl": "arm64",
    "armv7-unknown-linux-musleabihf": "armhf",
}
BOOT_METHODS = {"rpi-tryboot", "uboot-bootcount"}
FILESYSTEMS = {"vfat", "ext4", "f2fs", "btrfs"}
ROLES = {"boot-select", "boot", "rootfs", "data"}

KNOWN = {
    "": {"schema", "name", "description", "target", "deb_arch", "cpu", "boot", "storage",
         "partition", "memory", "limits"},
    "cpu": {"cores", "aes_instructions"},
    "boot": {"method", "notes"},
    "storage": {"table", "recommended", "min_size_mib"},
    "partition": {"name", "role", "slot", "size_mib", "fs"},
    "memory": {"ram_min_mib", "redb_cache_bytes"},
    "limits": {"attachment_spool_bytes", "max_websocket_clients"},
}


def resolve(board: str) -> Path:
    p = Path(board)
    if p.suffix == ".toml" or "/" in board:
        return p
    return BOARD_DIR / f"{board}.toml"


def load(path: Path) -> dict:
    with path.open("rb") as f:
        return tomllib.load(f)


def check(path: Path, d: dict) -> tuple[list[str], list[str]]:
    """Return (errors, warnings) for one descriptor."""
    err: list[str] = []
    warn: list[str] = []

    def need(table: dict, key: str, typ: type, where: str):
        v = table.get(key)
        # bool is an int in Python; do not let `true` pass as a size.
        if v is None or not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            err.append(f"{where}{key}: missing or not {typ.__name__}")
            return None
        return v

    for section, keys in KNOWN.items():
        tables = [d] if section == "" else (
            d.get(section, []) if section == "partition" else [d.get(section, {})])
        for t in tables:
            if isinstance(t, dict):
                for k in t.keys() - keys:
                    warn.append(f"unknown key {section + '.' if section else ''}{k}")

    if d.get("schema") != 1:
        err.append("schema: must be 1")
    name = need(d, "name", str, "")
    if name and name != path.stem:
        err.append(f"name: {name!r} does not match file name {path.stem!r}")
    target = need(d, "target", str, "")
    if target and target not in TARGETS:
        err.append(f"target: {target!r} is not one of {sorted(TARGETS)}")
    deb_arch = need(d, "deb_arch", str, "")
    if target in TARGETS and deb_arch and deb_arch != TARGETS[target]:
        err.append(f"deb_arch: {deb_arch!r} does not match target (expected {TARGETS[target]!r})")

    cpu = d.get("cpu", {})
    need(cpu, "cores", int, "cpu.")
    need(cpu, "aes_instructions", bool, "cpu.")

    boot = d.get("boot", {})
    method = need(boot, "method", str, "boot.")
    if method and method not in BOOT_METHODS:
        err.append(f"boot.method: {method!r} is not one of {sorted(BOOT_METHODS)}")

    storage = d.get("storage", {})
    table = need(storage, "table", str, "storage.")
    if table and table not in {"gpt", "mbr"}:
        err.append("storage.table: must be 'gpt' or 'mbr'")
    need(storage, "recommended", str, "storage.")
    min_size = need(storage, "min_size_mib", int, "storage.")

    parts = d.get("partition", [])
    if not parts:
        err.append("partition: at least one [[partition]] is required")
    names = set()
    fixed = 0
    for i, p in enumerate(parts):
        where = f"partition[{i}]."
        pname = need(p, "name", str, where)
        if pname in names:
            err.append(f"{where}name: duplicate {pname!r}")
        names.add(pname)
        role = need(p, "role", str, where)
        if role and role not in ROLES:
            err.append(f"{where}role: {role!r} is not one of {sorted(ROLES)}")
        size = need(p, "size_mib", int, where)
        if size is not None:
            if size < 0:
                err.append(f"{where}size_mib: negative")
            if size == 0 and i != len(parts) - 1:
                err.append(f"{where}size_mib: only the last partition may fill the device (0)")
            fixed += max(size, 0)
        fs = need(p, "fs", str, where)
        if fs and fs not in FILESYSTEMS:
            err.append(f"{where}fs: {fs!r} is not one of {sorted(FILESYSTEMS)}")
        if role == "boot" and fs and fs != "vfat":
            err.append(f"{where}fs: boot partitions must be vfat (firmware and U-Boot read FAT)")

    def slots(role: str) -> dict[str, dict]:
        return {p.get("slot"): p for p in parts if p.get("role") == role}

    roots = slots("rootfs")
    if set(roots) != {"A", "B"} or sum(p.get("role") == "rootfs" for p in parts) != 2:
        err.append("partition: need exactly two rootfs partitions, slot A and slot B")
    elif roots["A"].get("size_mib") != roots["B"].get("size_mib"):
        err.append("partition: rootfs A and B must be the same size (a bundle must fit either)")
    if sum(p.get("role") == "data" for p in parts) != 1:
        err.append("partition: need exactly one data partition")
    boots = [p for p in parts if p.get("role") == "boot"]
    if method == "rpi-tryboot":
        if sum(p.get("role") == "boot-select" for p in parts) != 1 or set(slots("boot")) != {"A", "B"}:
            err.append("rpi-tryboot: needs one boot-select (autoboot.txt) partition and boot partitions for slots A and B")
        if parts and parts[0].get("role") != "boot-select":
            err.append("rpi-tryboot: the boot-select partition must be partition 1 (autoboot.txt is read there)")
    elif method == "uboot-bootcount":
        if len(boots) != 1:
            err.append("uboot-bootcount: needs exactly one shared boot partition")
        if parts and parts[0].get("role") != "boot":
            err.append("uboot-bootcount: the boot partition must be partition 1")
    if table == "mbr" and len(parts) > 4:
        err.append("storage.table: mbr holds at most 4 primary partitions")
    if min_size is not None and fixed >= min_size:
        err.append(f"storage.min_size_mib: fixed partitions take {fixed} MiB, no room for data")

    mem = d.get("memory", {})
    ram = need(mem, "ram_min_mib", int, "memory.")
    cache = need(mem, "redb_cache_bytes", int, "memory.")
    if cache is not None and (cache <= 0 or cache % (1 << 20)):
        err.append("memory.redb_cache_bytes: must be a positive whole number of MiB (lanbox's cache_mb)")
    if ram and cache and cache > ram * 1024 * 1024 // 8:
        err.append("memory.redb_cache_bytes: more than 1/8 of the smallest RAM size")

    limits = d.get("limits", {})
    for key in ("attachment_spool_bytes", "max_websocket_clients"):
        v = need(limits, key, int, "limits.")
        if v is not None and v <= 0:
            err.append(f"limits.{key}: must be positive")
    return err, warn


def flat(d: dict) -> dict[str, str]:
    parts = ",".join(
        f"{p['name']}:{p['size_mib'] or 'fill'}:{p['fs']}" for p in d.get("partition", []))
    return {
        "name": d["name"],
        "target": d["target"],
        "deb_arch": d["deb_arch"],
        "boot_method": d["boot"]["method"],
        "partition_table": d["storage"]["table"],
        "partitions": parts,
        "aes_instructions": str(d["cpu"]["aes_instructions"]).lower(),
        "ram_min_mib": str(d["memory"]["ram_min_mib"]),
        "redb_cache_bytes": str(d["memory"]["redb_cache_bytes"]),
        # lanbox's config key is [store] cache_mb (LANBOX_STORE_CACHE_MB), in MiB.
        "store_cache_mb": str(d["memory"]["redb_cache_bytes"] >> 20),
        "attachment_spool_bytes": str(d["limits"]["attachment_spool_bytes"]),
        "max_websocket_clients": str(d["limits"]["max_websocket_clients"]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("board", nargs="?", help="descriptor name or path")
    ap.add_argument("--get", metavar="KEY", help="print only this key (see the default output)")
    ap.add_argument("--dropin", action="store_true",
                    help="print a lanbox.service drop-in (/etc/systemd/system/lanbox.service.d/board.conf) "
                         "that applies the board's settings lanbox reads today")
    ap.add_argument("--check", action="store_true",
                    help="validate BOARD, or every board/*.toml when BOARD is omitted")
    args = ap.parse_args()

    if args.check:
        paths = [resolve(args.board)] if args.board else sorted(BOARD_DIR.glob("*.toml"))
        bad = 0
        for path in paths:
            try:
                err, warn = check(path, load(path))
            except (OSError, tomllib.TOMLDecodeError) as e:
                err, warn = [str(e)], []
            for w in warn:
                print(f"{path.name}: warning: {w}", file=sys.stderr)
            for e in err:
                print(f"{path.name}: error: {e}", file=sys.stderr)
            print(f"{path.name}: {'INVALID' if err else 'ok'}")
            bad += bool(err)
        return 1 if bad else 0

    if not args.board:
        ap.error("BOARD is required unless --check is given")
    path = resolve(args.board)
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(BOARD_DIR.glob("*.toml")))
        print(f"board-info: no descriptor {path} (known boards: {known})", file=sys.stderr)
        return 2
    d = load(path)
    err, warn = check(path, d)
    for w in warn:
        print(f"{path.name}: warning: {w}", file=sys.stderr)
    if err:
        for e in err:
            print(f"{path.name}: error: {e}", file=sys.stderr)
        return 1
    values = flat(d)
    if args.dropin:
        print(f"# generated by scripts/board-info.py {d['name']} --dropin")
        print("[Service]")
        print(f"Environment=LANBOX_STORE_CACHE_MB={values['store_cache_mb']}")
        return 0
    if args.get:
        if args.get not in values:
            print(f"board-info: unknown key {args.get!r} (one of {', '.join(values)})", file=sys.stderr)
            return 2
        print(values[args.get])
    else:
        for k, v in values.items():
            print(f"{k}={v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
