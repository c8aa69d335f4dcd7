#!/usr/bin/env bash
# Boot a Debian 12 container with a real systemd (252) under systemd-nspawn, install the amd64
# package into it and check what an offline analysis cannot: socket activation by name with
# PrivateUsers= and the static user lanbox, READY=1 and the watchdog, the sandbox seen from inside,
# activation on the first connection, LoadCredential=, the mark-good ordering, and the
# maintainer scripts with systemd running.
#
# Usage: scripts/test-systemd-nspawn.sh [--binary PATH]
#   without --binary: a small Python stand-in plays lanbox (answers plain HTTP on both
#     sockets with what it sees: fd names, uid, credentials, watchdog, write access)
#   --binary PATH: the real amd64 lanbox; checks it reaches READY, survives the watchdog and
#     answers on 443 (TLS) and 80
#
# Needs root, systemd-container and mmdebstrap (installed when missing). The Debian rootfs
# is built once into $LANBOX_NSPAWN_CACHE (default ~/.cache/lanbox-nspawn) and every run boots
# an --ephemeral copy of it, with --private-network (the container sees only its own loopback).
# Ends with an "N passed, N failed" line.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${LANBOX_NSPAWN_CACHE:-$HOME/.cache/lanbox-nspawn}"
ROOTFS="$CACHE/bookworm"
binary=""
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$(realpath "${2:?}")"; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "test-systemd-nspawn: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "test-systemd-nspawn: must run as root" >&2; exit 2; }

missing=()
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The package depends on the fonts PDF export reads; a rootfs cached before that is rebuilt.
if [ ! -x "$ROOTFS/usr/lib/systemd/systemd" ] || [ ! -e "$ROOTFS/var/lib/dpkg/info/fonts-noto-cjk.list" ]; then
    rm -rf "$ROOTFS"
    echo "test-systemd-nspawn: building the Debian 12 rootfs in $ROOTFS (once)"
    mkdir -p "$CACHE"
    rm -rf "$ROOTFS.tmp"
    mmdebstrap --variant=minbase --include=systemd,systemd-sysv,dbus,python3,curl,ca-certificates,fonts-noto-core,fonts-noto-cjk,fonts-noto-color-emoji \
        bookworm "$ROOTFS.tmp" >/dev/null
    echo lanbox-test > "$ROOTFS.tmp/etc/hostname"
    mv "$ROOTFS.tmp" "$ROOTFS"
fi

work="$(mktemp -d)"
machine="lanbox-test-$$"
nspawn_pid=""
cleanup() {
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        inside systemctl poweroff >/dev/null 2>&1 || true
        for _ in $(seq 1 30); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 1; done
        kill "$nspawn_pid" 2>/dev/null || true
    fi
    [ -z "$nspawn_pid" ] || wait "$nspawn_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- the stand-in and the package ---------------------------------------------------
cat > "$work/standin" <<'EOF'
#!/usr/bin/python3
# Plays lanbox: socket activation by name, sd_notify READY and WATCHDOG, reports what it sees.
import json, os, socket, sys, threading, time

def notify(msg):
    path = os.environ.get("NOTIFY_SOCKET", "")
    if path:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(msg.encode(), "\0" + path[1:] if path.startswith("@") else path)
        s.close()

args = sys.argv[1:]
if args == ["--version"]:
    print("lanbox 0.0.0-standin"); sys.exit(0)
if args[:2] == ["update", "mark-good"]:
    # What the real command needs from its sandbox: lanbox on loopback, and the system bus
    # (RAUC) with EXTERNAL authentication passing under PrivateUsers=.
    import urllib.request
    urllib.request.urlopen("http://127.0.0.1:80/", timeout=5).read()
    bus = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bus.connect("/run/dbus/system_bus_socket")
    bus.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
    reply = bus.recv(256)
    assert reply.startswith(b"OK "), reply
    print("stand-in: mark-good: lanbox reachable, D-Bus auth", reply.strip().decode()); sys.exit(0)
data = args[args.index("--data") + 1]
n = int(os.environ.get("LISTEN_FDS", "0")) if os.environ.get("LISTEN_PID") == str(os.getpid()) else 0
names = os.environ.get("LISTEN_FDNAMES", "").split(":")
creds = os.environ.get("CREDENTIALS_DIRECTORY")
probe = os.path.join(data, "probe")
with open(probe, "w") as f:
    f.write("x")
try:
    open("/etc/lanbox-write-test", "w"); etc_writable = True
except OSError:
    etc_writable = False
info = {"uid": os.getuid(), "names": names, "creds": sorted(os.listdir(creds)) if creds else [],
        "mode": oct(os.stat(probe).st_mode & 0o777), "etc_writable": etc_writable,
        "watchdog_usec": os.environ.get("WATCHDOG_USEC")}

def serve(name, s):
    while True:
        c, _ = s.accept()
        c.recv(4096)
        body = json.dumps(dict(info, fd_name=name, port=s.getsockname()[1])).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        c.close()

for i in range(n):
    threading.Thread(target=serve, args=(names[i], socket.socket(fileno=3 + i)), daemon=True).start()
notify("READY=1\nSTATUS=stand-in")
while True:
    time.sleep(5)
    notify("WATCHDOG=1")
EOF
chmod 0755 "$work/standin"
# Any amd64 ELF will do for the package when the stand-in replaces it after unpacking.
"$REPO/scripts/build-deb.sh" amd64 --binary "${binary:-/bin/true}" --out "$work" >/dev/null
mv "$work"/lanbox_*_amd64.deb "$work/lanbox.deb"

# --- boot -----------------------------------------------------------------------------
systemd-nspawn --quiet -D "$ROOTFS" --ephemeral --boot --private-network --machine="$machine" \
    --register=no --keep-unit --console=pipe --bind-ro="$work:/mnt/lanbox" \
    >"$work/console.log" 2>&1 &
nspawn_pid=$!
init_pid=""
# --ephemeral copies the rootfs first (no btrfs snapshots here): seconds, more under load.
for _ in $(seq 1 1200); do
    init_pid="$(pgrep -P "$nspawn_pid" | head -1 || true)"
    [ -n "$init_pid" ] && break
    kill -0 "$nspawn_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$init_pid" ] || { cat "$work/console.log" >&2; echo "container did not start" >&2; exit 1; }
inside() {
    nsenter -t "$init_pid" -m -u -i -n -p -- /usr/bin/env -i \
        PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"
}
state=""
for _ in $(seq 1 120); do
    state="$(inside systemctl is-system-running 2>/dev/null || true)"
    case "$state" in running|degraded) break ;; esac
    sleep 0.5
done
echo "test-systemd-nspawn: container up ($state), $(inside systemctl --version | head -1)"

passed=0 failed=0
check() { # check DESCRIPTION COMMAND...
    local what="$1"; shift
    if "$@" >"$work/out" 2>&1; then
        passed=$((passed + 1)); echo "ok   $what"
    else
        failed=$((failed + 1)); echo "FAIL $what"; sed 's/^/     /' "$work/out" | head -20
    fi
}
json() { # json PORT EXPR: fetch the stand-in's report over PORT and evaluate EXPR on it as `j`
    inside curl -s -m 10 "http://127.0.0.1:$1/" \
        | python3 -c "import json,sys; j=json.load(sys.stdin); print(j); assert $2"
}

restarts_on_connection() {
    inside systemctl stop lanbox.service || return 1
    [ "$(inside systemctl is-active lanbox.socket)" = active ] || return 1
    inside curl -s -m 10 -o /dev/null http://127.0.0.1:80/ || return 1
    [ "$(inside systemctl is-active lanbox.service)" = active ]
}
not_active() { ! inside systemctl is-active -q lanbox.service; }

inside mkdir -p /etc/rauc
inside touch /etc/rauc/system.conf
if [ -z "$binary" ]; then
    check "dpkg --unpack" inside dpkg --unpack /mnt/lanbox/lanbox.deb
    inside cp /mnt/lanbox/standin /usr/bin/lanbox
    check "dpkg --configure (postinst starts the units)" inside dpkg --configure lanbox
else
    check "dpkg -i" inside dpkg -i /mnt/lanbox/lanbox.deb
fi
check "lanbox.socket active" inside systemctl is-active lanbox.socket
check "lanbox-http.socket active" inside systemctl is-active lanbox-http.socket
check "lanbox.service active (READY=1 received)" inside systemctl is-active lanbox.service

if [ -z "$binary" ]; then
    check "443 arrives as fd named https" json 443 'j["fd_name"] == "https" and j["port"] == 443'
    check "80 arrives as fd named http" json 80 'j["fd_name"] == "http" and j["port"] == 80'
    check "runs as the static user lanbox, not root" json 443 'j["uid"] != 0'
    check "state dir writable, files 0600 (UMask)" json 443 'j["mode"] == "0o600"'
    check "/etc read-only (ProtectSystem=strict)" json 443 'not j["etc_writable"]'
    check "watchdog armed at 30 s" json 443 'j["watchdog_usec"] == "30000000"'
    check "stopped service restarts on a connection" restarts_on_connection
    inside sh -c 'mkdir -p /etc/systemd/system/lanbox.service.d /etc/lanbox
        printf "[Service]\nLoadCredential=master-key:/etc/lanbox/master-key\n" > /etc/systemd/system/lanbox.service.d/cred.conf
        head -c 32 /dev/urandom > /etc/lanbox/master-key; chmod 0600 /etc/lanbox/master-key
        systemctl daemon-reload; systemctl restart lanbox.service' >/dev/null 2>&1 || true
    check "LoadCredential=master-key reaches the service" json 443 '"master-key" in j["creds"]'
    inside sh -c 'rm -f /etc/lanbox/master-key; systemctl restart lanbox.service' >/dev/null 2>&1 || true
    check "a missing LoadCredential file fails the start (so the unit does not set it)" not_active
    inside sh -c 'rm -rf /etc/systemd/system/lanbox.service.d; systemctl daemon-reload; systemctl reset-failed lanbox.service; systemctl start lanbox.service' >/dev/null 2>&1 || true
else
    check "HTTPS answers on 443" inside curl -sk -m 10 -o /dev/null https://127.0.0.1/
    check "HTTP answers on 80" inside curl -s -m 10 -o /dev/null http://127.0.0.1/
    check "data directory private, owned by lanbox (UMask=0077, static user)" inside sh -c \
        'cd /var/lib/lanbox && stat -c "%a %U %n" . * && [ "$(stat -c %a .)" = 700 ] && [ "$(stat -c %U .)" = lanbox ] && ! find . -perm /077 | grep -q .'
fi
main_pid="$(inside systemctl show -P MainPID lanbox.service)"
sleep 35
# Same main process 35 s later: the watchdog (30 s) was fed and nothing restarted it.
check "same process still active after 35 s (watchdog fed)" inside sh -c \
    '[ "$(systemctl is-active lanbox.service)" = active ] && [ "$(systemctl show -P MainPID lanbox.service)" = '"$main_pid"' ] || { systemctl status --no-pager lanbox.service; false; }'
check "mark-good runs after lanbox is up" inside systemctl start lanbox-mark-good.service
check "dpkg -r stops everything" inside sh -c 'dpkg -r lanbox >/dev/null && ! systemctl is-active -q lanbox.service lanbox.socket lanbox-http.socket'
check "dpkg -P" inside dpkg -P lanbox

echo "nspawn: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
