#!/usr/bin/env python3
"""Boots the lanbox image under qemu-system-aarch64 (no root) and checks the A/B fallback.

    image/boot-test.py [BOARD]          (default qemu-aarch64; run image/build.sh BOARD first)

1. Boots the image as built (slot A), waits for lanbox to answer /api/v1/health over HTTPS
   through a host port forward, and for lanbox-mark-good.service to mark slot A good
   (A_TRY=0 in the ESP's grubenv). Reports boot-to-ready time.
2. Writes a slot B whose lanbox cannot start (the image's rootfs with /usr/bin/lanbox replaced
   by `exit 1`, via debugfs) and sets grubenv as `rauc install` leaves it (ORDER="B A",
   B_OK=1, B_TRY=0). Boots: GRUB tries B; lanbox fails 5 times, systemd reboots
   (StartLimitAction=reboot); B was never marked good, so GRUB boots A, which serves again
   with the same TLS certificate (the data partition is intact). Reports the time from the
   bad slot's boot to serving on A.

3. Makes bundles (a newer version, an older one, one signed by another CA's key, one without
   its signature), writes them onto the data partition, boots A with a root shell on the
   serial console (systemd.debug_shell) and runs `rauc install` in the guest (RAUC 1.13): the
   older one is refused by the pre-install handler, the other two for their signature, none
   touches grubenv; the newer one installs into B, `systemctl reboot` boots B, which serves
   with the same certificate, runs the new IMAGE_VERSION and is marked good. Reports the
   install time.
4. The update through lanbox's HTTPS API, as an admin would do it from the page: boots the
   running slot, creates the first admin with the setup code from the serial log, logs in,
   `GET /api/v1/system/update` (both slots, the booted one), `PUT .../bundle` of an older
   bundle, of one signed by another key and of one without its signature (400 bundle_refused,
   nothing staged, grubenv untouched), then of a newer one (201 with its version), `POST .../install`, polls `GET`
   until `installed`, `POST /api/v1/system/reboot`; the box comes back on the other slot,
   serving the new version with `last.outcome` = `running`, and marks it good. Reports upload,
   install and reboot-to-serving times. Telegram is the Bot API simulator on the host (the
   host's own lanbox build: LANBOX_HOST_BIN, default target/debug/lanbox): before the update a
   bot account on it ingests 40 messages; after it the same 40 are there, once each, and 10
   sent after the update arrive too.
5. (Right after 4, same boot.) A bad update through the same API: a newer bundle, correctly
   signed, whose lanbox exits 1. lanbox accepts and installs it and reboots; the bad slot's
   lanbox fails, systemd reboots, GRUB goes back to the good slot, which serves again with
   the same certificate and data; lanbox reports `last.outcome` = `rolled_back` for that
   version, every message is there once and ingest goes on. Reports bad boot to serving.

Each boot ends with the power button (qemu's system_powerdown) and a clean shutdown: a power
cut right after the first boot left lanbox's new TLS certificate empty on the data partition
(lanbox then refused to start), a lanbox bug this test does not cover yet.
Serial logs of every boot: target-image/BOARD/boot-test/boot*.log.
Environment: BOOT_TEST_TIMEOUT (seconds per wait, default 600), QEMU_SMP (default 2),
BOOT_TEST_ONLY=api (only boots 4 and 5, on the image as built: slot A, update into B, a bad
update back into A).
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BOARD = sys.argv[1] if len(sys.argv) > 1 else "qemu-aarch64"
OUT = os.path.join(os.environ.get("IMAGE_OUT", os.path.join(REPO, "target-image")), BOARD)
WORK = os.path.join(OUT, "boot-test")
TIMEOUT = float(os.environ.get("BOOT_TEST_TIMEOUT", "600"))
AAVMF = "/usr/share/AAVMF"
MIB = 1048576
# How much larger than the image the test's disk is (the data partition grows into it).
GROW_MIB = 1024


def say(msg):
    print(f"boot-test: {msg}", flush=True)


def fail(msg):
    say(f"FAIL: {msg}")
    sys.exit(1)


def board_layout():
    """Partition start (MiB) by name, and size as NAME-size, from the board descriptor through
    image/lib.sh."""
    out = subprocess.run(
        ["bash", "-c", f'. "{HERE}/boards/{BOARD}.conf"; . "{HERE}/lib.sh"; parse_partitions; '
         'for i in $(seq 1 $PART_COUNT); do echo "${PART_NAME[i]} ${PART_START_MIB[i]} ${PART_MIB[i]}"; done'],
        check=True, capture_output=True, text=True).stdout
    layout = {}
    for n, start, size in (line.split() for line in out.splitlines()):
        layout[n] = int(start)
        layout[f"{n}-size"] = int(size)
    return layout


class Grubenv:
    """The ESP's grubenv, read and written with mtools at the ESP's offset in the disk file."""

    def __init__(self, disk, esp_mib):
        self.spec = f"{disk}@@{esp_mib * MIB}"
        self.env = dict(os.environ, MTOOLS_SKIP_CHECK="1")

    def read(self):
        with tempfile.TemporaryDirectory() as tmp:
            f = os.path.join(tmp, "grubenv")
            subprocess.run(["mcopy", "-o", "-i", self.spec, "::/EFI/BOOT/grubenv", f],
                           check=True, env=self.env)
            out = subprocess.run(["grub-editenv", f, "list"], check=True, capture_output=True,
                                 text=True).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def set(self, **kv):
        with tempfile.TemporaryDirectory() as tmp:
            f = os.path.join(tmp, "grubenv")
            subprocess.run(["mcopy", "-o", "-i", self.spec, "::/EFI/BOOT/grubenv", f],
                           check=True, env=self.env)
            subprocess.run(["grub-editenv", f, "set"] + [f"{k}={v}" for k, v in kv.items()],
                           check=True)
            subprocess.run(["mcopy", "-o", "-i", self.spec, f, "::/EFI/BOOT/grubenv"],
                           check=True, env=self.env)


class Qemu:
    def __init__(self, disk, vars_fd, log, port, console=False):
        self.log = log
        if console:
            # A unix socket the test types into; qemu still writes everything to the log file.
            serial = ["-chardev", f"socket,id=ser0,path={log}.console,server=on,wait=off,logfile={log}",
                      "-serial", "chardev:ser0"]
        else:
            serial = ["-serial", f"file:{log}"]
        cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "max,pauth-impdef=on",
               "-smp", os.environ.get("QEMU_SMP", "2"), "-m", "1024",
               "-display", "none"] + serial + [
               "-monitor", f"unix:{log}.monitor,server,nowait",
               "-drive", f"if=pflash,format=raw,readonly=on,file={AAVMF}/AAVMF_CODE.fd",
               "-drive", f"if=pflash,format=raw,file={vars_fd}",
               "-drive", f"if=virtio,format=raw,file={disk}",
               "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:443",
               "-device", "virtio-net-pci,netdev=n0,romfile=", "-device", "virtio-rng-pci"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)

    def text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, after=0, timeout=TIMEOUT):
        """Waits for pattern in the serial log at or after offset `after`; returns the match end."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail(f"qemu exited ({self.proc.returncode}) waiting for {pattern!r}")
            m = rx.search(self.text(), after)
            if m:
                return m.end()
            time.sleep(0.5)
        fail(f"no {pattern!r} in {self.log} within {timeout:.0f} s")

    def power_off(self, timeout=180):
        """Presses the power button (ACPI-less virt: a GPIO key systemd-logind handles) and
        waits for the guest to shut down cleanly and qemu to exit."""
        start = time.monotonic()
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(self.log + ".monitor")
                s.sendall(b"system_powerdown\n")
                time.sleep(0.5)
        except OSError as e:
            fail(f"qemu monitor: {e}")
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"the guest did not power off within {timeout} s of the power button")
        return round(time.monotonic() - start, 1)

    def stop(self):
        """A power cut, for the error paths."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        try:
            os.unlink(self.log + ".monitor")
        except FileNotFoundError:
            pass


class Console:
    """A root shell on the serial console (systemd.debug_shell=ttyAMA0; test copies only: the
    image has no bash, so the test links /usr/bin/bash to dash in the slots it boots). A thread
    drains the socket all the time: qemu stops the guest's serial output when nobody reads."""

    def __init__(self, q):
        self.q = q
        self.sock = socket.socket(socket.AF_UNIX)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock.connect(q.log + ".console")
                break
            except OSError:
                if time.monotonic() > deadline:
                    fail("cannot connect to the serial console socket")
                time.sleep(0.2)
        self.buf = b""
        self.lock = threading.Lock()
        self.n = 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            if b"\x1b[6n" in chunk:  # systemd's shell asks for the cursor position
                try:
                    self.sock.sendall(b"\x1b[24;80R")
                except OSError:
                    return
            with self.lock:
                self.buf += chunk

    def send(self, text):
        self.sock.sendall(text.encode())

    def run(self, command, timeout=TIMEOUT):
        """Runs command in the debug shell; returns (exit status, output)."""
        self.n += 1
        tag = f"@@{self.n}@@"
        with self.lock:
            start = len(self.buf)
        self.send(f"{command}; echo \"{tag[:2]}\"\"{tag[2:]}$?\"\r")
        deadline = time.monotonic() + timeout
        rx = re.compile(re.escape(tag).encode() + rb"(\d+)")
        while time.monotonic() < deadline:
            with self.lock:
                m = rx.search(self.buf, start)
                if m:
                    return int(m.group(1)), self.buf[start:m.start()].decode("utf-8", "replace")
            if self.q.proc.poll() is not None:
                fail("qemu exited while a console command ran")
            time.sleep(0.2)
        fail(f"console command timed out: {command}")

    def close(self):
        self.sock.close()


def health(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
        c.request("GET", "/api/v1/health")
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, json.loads(body) if body else None
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
        return None, None


def wait_serving(q, port, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if q.proc.poll() is not None:
            fail("qemu exited while waiting for HTTPS")
        status, body = health(port)
        if status == 200 and body and body.get("status") == "ok":
            return body
        time.sleep(1)
    fail(f"lanbox did not serve HTTPS on 127.0.0.1:{port} within {timeout:.0f} s")


def wait_env(grubenv, q, want, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    env = {}
    while time.monotonic() < deadline:
        env = grubenv.read()
        if all(env.get(k) == v for k, v in want.items()):
            return env
        if q.proc.poll() is not None:
            break
        time.sleep(2)
    fail(f"grubenv never reached {want}: {env}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broken_slot(rootfs, dest):
    """A copy of the rootfs whose lanbox exits 1 at once: a bad update."""
    shutil.copyfile(rootfs, dest)
    with tempfile.TemporaryDirectory() as tmp:
        fake = os.path.join(tmp, "lanbox")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho 'broken lanbox (image/boot-test.py)' >&2\nexit 1\n")
        os.chmod(fake, 0o755)
        cmds = os.path.join(tmp, "cmds")
        with open(cmds, "w") as f:
            f.write("rm /usr/bin/lanbox\n"
                    f"write {fake} /usr/bin/lanbox\n"
                    "sif /usr/bin/lanbox mode 0100755\n"
                    "sif /usr/bin/lanbox uid 0\n"
                    "sif /usr/bin/lanbox gid 0\n")
        subprocess.run(["debugfs", "-w", "-f", cmds, dest], check=True, capture_output=True)


def main():
    disk_src = os.path.join(OUT, "disk.img")
    if not os.path.exists(disk_src):
        fail(f"no {disk_src}: run image/build.sh {BOARD}")
    for tool in ("qemu-system-aarch64", "mcopy", "grub-editenv", "debugfs"):
        if not shutil.which(tool):
            fail(f"{tool} not found: run image/install-deps.sh")
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    disk = os.path.join(WORK, "disk.img")
    subprocess.run(["cp", "--sparse=always", disk_src, disk], check=True)
    # A disk larger than the image, as a card is: the data partition must grow into the rest.
    os.truncate(disk, os.path.getsize(disk) + GROW_MIB * MIB)
    vars_fd = os.path.join(WORK, "vars.fd")
    shutil.copyfile(f"{AAVMF}/AAVMF_VARS.fd", vars_fd)
    layout = board_layout()
    grubenv = Grubenv(disk, layout["esp"])
    # The journal goes to the serial console too, so the logs show lanbox and RAUC.
    grubenv.set(EXTRA_CMDLINE="systemd.journald.forward_to_console=1")
    port = free_port()
    results = {}
    if os.environ.get("BOOT_TEST_ONLY") == "api":
        api_phase(disk, vars_fd, layout, grubenv, port, None, results)
        os.unlink(disk)
        os.unlink(vars_fd)
        say("PASS " + json.dumps(results))
        return

    say("boot 1: the image as built, slot A")
    q = Qemu(disk, vars_fd, os.path.join(WORK, "boot1.log"), port)
    try:
        q.wait_log(r"lanbox: booting slot A")
        body = wait_serving(q, port)
        results["boot_to_ready_s"] = round(time.monotonic() - q.started, 1)
        cert = body.get("certificate_sha256")
        say(f"serving HTTPS after {results['boot_to_ready_s']} s (qemu start to /api/v1/health ok)")
        env = wait_env(grubenv, q, {"A_OK": "1", "A_TRY": "0"})
        results["mark_good_s"] = round(time.monotonic() - q.started, 1)
        say(f"slot A marked good after {results['mark_good_s']} s: {env}")
        say(f"powered off cleanly in {q.power_off()} s")
    finally:
        q.stop()

    say("boot 2: slot B holds a bad update (lanbox exits 1); it is never marked good")
    bad = os.path.join(WORK, "rootfs-bad.ext4")
    broken_slot(os.path.join(OUT, "rootfs.ext4"), bad)
    subprocess.run(["dd", f"if={bad}", f"of={disk}", "bs=1M", f"seek={layout['rootfs-b']}",
                    "conv=notrunc,sparse", "status=none"], check=True)
    os.unlink(bad)
    grubenv.set(ORDER="B A", B_OK="1", B_TRY="0")
    q = Qemu(disk, vars_fd, os.path.join(WORK, "boot2.log"), port)
    try:
        at = q.wait_log(r"lanbox: booting slot B")
        t_bad = time.monotonic()
        q.wait_log(r"root=PARTLABEL=rootfs-b", after=at)
        at = q.wait_log(r"lanbox: booting slot A", after=at)
        say(f"back on slot A after {time.monotonic() - t_bad:.1f} s")
        body = wait_serving(q, port)
        results["bad_boot_to_serving_s"] = round(time.monotonic() - t_bad, 1)
        if body.get("certificate_sha256") != cert:
            fail("another TLS certificate after the fallback: the data partition was not kept")
        say(f"serving on A again {results['bad_boot_to_serving_s']} s after the bad slot booted,"
            " same certificate")
        env = wait_env(grubenv, q, {"A_TRY": "0", "B_TRY": "1"})
        say(f"grubenv after the fallback: {env}")
        say(f"powered off cleanly in {q.power_off()} s")
    finally:
        q.stop()
    if "broken lanbox" not in q.text() and "lanbox.service: Failed" not in q.text():
        say("note: the bad lanbox's own message is not in the serial log")
    install_phase(disk, vars_fd, layout, grubenv, port, cert, results)
    api_phase(disk, vars_fd, layout, grubenv, port, cert, results)
    results["logs"] = sorted(f for f in os.listdir(WORK) if f.endswith(".log"))
    os.unlink(disk)
    os.unlink(vars_fd)
    say("PASS " + json.dumps(results))


def debugfs(image, *commands):
    with tempfile.NamedTemporaryFile("w", suffix=".cmds") as f:
        f.write("\n".join(commands) + "\n")
        f.flush()
        subprocess.run(["debugfs", "-w", "-f", f.name, image], check=True, capture_output=True)


def rootfs_with_version(src, dest, version):
    """A copy of the rootfs with another IMAGE_VERSION and /usr/bin/bash -> dash (debug shell)."""
    subprocess.run(["cp", "--sparse=always", src, dest], check=True)
    text = subprocess.run(["debugfs", "-R", "cat /usr/lib/os-release", dest], check=True,
                          capture_output=True, text=True).stdout
    text = re.sub(r"(?m)^IMAGE_VERSION=.*$", f"IMAGE_VERSION={version}", text)
    with tempfile.NamedTemporaryFile("w") as f:
        f.write(text)
        f.flush()
        debugfs(dest, "rm /usr/lib/os-release", f"write {f.name} /usr/lib/os-release",
                "sif /usr/lib/os-release mode 0100644", "sif /usr/lib/os-release uid 0",
                "sif /usr/lib/os-release gid 0", "symlink /usr/bin/bash /usr/bin/dash")


def install_phase(disk, vars_fd, layout, grubenv, port, cert, results):
    """3. rauc install inside the guest (RAUC 1.13): an older bundle is refused by the
    pre-install handler without touching the slots; a newer one installs into B, GRUB boots it,
    lanbox serves with the same data and marks B good."""
    say("boot 3: rauc install in the guest: an older bundle (refused), then a newer one")
    manifest = dict(line.split("=", 1) for line in open(os.path.join(OUT, "manifest.txt"))
                    if "=" in line and not line.startswith("sfdisk"))
    version = manifest["version"].strip()
    newer, older = version + ".1", "0.0.1"
    bundles = {}
    for name, v in (("new", newer), ("old", older)):
        rootfs = os.path.join(WORK, f"rootfs-{name}.ext4")
        rootfs_with_version(os.path.join(OUT, "rootfs.ext4"), rootfs, v)
        bundles[name] = os.path.join(WORK, f"{name}.raucb")
        subprocess.run([os.path.join(HERE, "bundle.sh"), BOARD, rootfs, bundles[name]],
                       check=True, stdout=subprocess.DEVNULL)
        os.unlink(rootfs)
    results["bundle_bytes"] = os.path.getsize(bundles["new"])
    # Signed by another CA's key (a small payload: the signature is checked first).
    other = os.path.join(os.path.dirname(OUT), "other-key")
    if not os.path.exists(os.path.join(other, "signing.cert.pem")):
        subprocess.run([os.path.join(HERE, "keys.sh"), "--other", other], check=True,
                       stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as content:
        with open(os.path.join(content, "rootfs.ext4"), "wb") as f:
            f.write(os.urandom(65536))
        with open(os.path.join(content, "manifest.raucm"), "w") as f:
            f.write(f"[update]\ncompatible={manifest['compatible'].strip()}\nversion=999\n\n"
                    "[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.ext4\n")
        bundles["other"] = os.path.join(WORK, "other.raucb")
        subprocess.run(["rauc", "bundle", f"--cert={other}/signing.cert.pem",
                        f"--key={other}/signing.key.pem", content, bundles["other"]],
                       check=True, capture_output=True)
    # Unsigned: the newer bundle without its CMS signature and size trailer.
    with open(bundles["new"], "rb") as f:
        raw = f.read()
    sig = int.from_bytes(raw[-8:], "big")
    bundles["unsigned"] = os.path.join(WORK, "unsigned.raucb")
    with open(bundles["unsigned"], "wb") as f:
        f.write(raw[:len(raw) - 8 - sig])
    del raw
    data = f"{disk}?offset={layout['data'] * MIB}"
    debugfs(data, *(f"write {path} /{name}.raucb" for name, path in bundles.items()))
    for b in bundles.values():
        os.unlink(b)
    debugfs(f"{disk}?offset={layout['rootfs-a'] * MIB}", "symlink /usr/bin/bash /usr/bin/dash")
    grubenv.set(EXTRA_CMDLINE="systemd.journald.forward_to_console=1 systemd.debug_shell=ttyAMA0")
    q = Qemu(disk, vars_fd, os.path.join(WORK, "boot3.log"), port, console=True)
    try:
        c = Console(q)
        q.wait_log(r"lanbox: booting slot A")
        wait_serving(q, port)
        before = wait_env(grubenv, q, {"A_OK": "1", "A_TRY": "0"})
        rc, out = c.run("rauc install /var/lib/old.raucb >/tmp/old.log 2>&1")
        _, log = c.run("tail -n 4 /tmp/old.log")
        # RAUC reports the handler's exit; the handler's own words go to the journal (forwarded
        # to the serial log).
        if rc == 0 or "Pre-install handler error" not in log:
            fail(f"the older bundle was not refused (exit {rc}): {log!r}")
        q.wait_log(r"downgrade refused", timeout=30)
        time.sleep(5)
        if grubenv.read() != before:
            fail(f"the refused install changed the boot variables: {before} -> {grubenv.read()}")
        say("older bundle refused by the pre-install handler; grubenv untouched")
        for name in ("other", "unsigned"):
            rc, _ = c.run(f"rauc install /var/lib/{name}.raucb >/tmp/{name}.log 2>&1")
            _, log = c.run(f"tail -n 3 /tmp/{name}.log")
            if rc == 0 or "signature" not in log.lower():
                fail(f"the {name} bundle was not refused for its signature (exit {rc}): {log!r}")
            say(f"{name} bundle refused: " + " ".join(log.split())[-160:])
        if grubenv.read() != before:
            fail(f"a refused install changed the boot variables: {before} -> {grubenv.read()}")
        say("grubenv untouched by the refused installs")
        t = time.monotonic()
        rc, out = c.run("rauc install /var/lib/new.raucb >/tmp/new.log 2>&1")
        results["install_s"] = round(time.monotonic() - t, 1)
        _, log = c.run("tail -n 5 /tmp/new.log")
        if rc != 0:
            fail(f"rauc install of the newer bundle failed (exit {rc}): {log!r}")
        _, out2 = c.run("rauc status --detailed 2>&1 | grep -E 'Activated|bootname|boot status|bundle.version' ")
        env = wait_env(grubenv, q, {"ORDER": "B A", "B_OK": "1", "B_TRY": "0"}, timeout=60)
        say(f"newer bundle installed into B in {results['install_s']} s; grubenv {env}")
        say("rauc status: " + " | ".join(l.strip() for l in out2.splitlines() if l.strip())[:400])
        at = len(q.text())
        c.send("systemctl reboot\r")
        at = q.wait_log(r"lanbox: booting slot B", after=at)
        q.wait_log(r"root=PARTLABEL=rootfs-b", after=at)
        body = wait_serving(q, port)
        if body.get("certificate_sha256") != cert:
            fail("another TLS certificate after the update: the data partition was not kept")
        env = wait_env(grubenv, q, {"B_OK": "1", "B_TRY": "0"})
        rc, out = c.run("grep IMAGE_VERSION /etc/os-release")
        if f"IMAGE_VERSION={newer}" not in out:
            fail(f"slot B does not run {newer}: {out!r}")
        say(f"slot B runs {newer}, serves with the same certificate, marked good: {env}")
        c.close()
        say(f"powered off cleanly in {q.power_off()} s")
    finally:
        q.stop()


class Api:
    """lanbox's HTTPS API through the port forward, with the session cookie of a login."""

    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def call(self, method, path, body=None, file=None, timeout=60):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.ctx)
        headers = {"Origin": f"https://127.0.0.1:{self.port}"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif file is not None:
            data = open(file, "rb")
            headers["Content-Type"] = "application/octet-stream"
            headers["Content-Length"] = str(os.path.getsize(file))
        try:
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            raw = r.read()
            cookie = r.getheader("Set-Cookie")
            if cookie:
                self.cookie = cookie.split(";", 1)[0]
        finally:
            if file is not None:
                data.close()
            c.close()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, raw.decode("utf-8", "replace")


class BotSim:
    """The Bot API simulator (`lanbox dev telegram-sim`, the host's own lanbox build) on the
    host's loopback; the guest reaches it as 10.0.2.2 through qemu's user network. It stands
    for Telegram, so the box ingests real messages before the update and after it."""

    TOKEN = "333333:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"

    def __init__(self, log_path):
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
        binary = os.environ.get("LANBOX_HOST_BIN", os.path.join(target, "debug", "lanbox"))
        if not os.access(binary, os.X_OK):
            fail(f"no host lanbox at {binary} for the Bot API simulator: cargo build, or set"
                 " LANBOX_HOST_BIN")
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "dev", "telegram-sim", "--listen", "127.0.0.1:0", "--token", self.TOKEN],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"simulator at http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.stop()
            fail(f"the Bot API simulator did not start: {line!r}")
        self.port = int(m.group(1))
        threading.Thread(target=lambda: [self.log.write(l) for l in self.proc.stdout],
                         daemon=True).start()
        self.next_id = 1

    def api_base(self):
        return f"http://10.0.2.2:{self.port}"

    def inject(self, texts):
        """Ann writes each of `texts` to the bot, in order, as one batch of updates."""
        updates = []
        for t in texts:
            updates.append({"message": {
                "message_id": self.next_id, "date": int(time.time()), "text": t,
                "chat": {"id": 5001, "type": "private", "first_name": "Ann"},
                "from": {"id": 5001, "is_bot": False, "first_name": "Ann"}}})
            self.next_id += 1
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("POST", f"/_sim/bot{self.TOKEN}/updates", body=json.dumps(updates),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                fail(f"injecting into the simulator: {r.status} {body[:200]!r}")
        finally:
            c.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def stored_texts(api, timeout=TIMEOUT):
    """Every message text of Ann's chat, oldest first (all pages), or [] with no chat yet."""
    status, page = api.call("GET", "/api/v1/chats?limit=200")
    if status != 200:
        fail(f"GET /api/v1/chats: {status} {page}")
    chats = [c for c in page["chats"] if c.get("telegram_id") == 5001]
    if not chats:
        return []
    texts, before = [], None
    chat = urllib.parse.quote(chats[0]["id"], safe="")
    while True:
        q = f"/api/v1/chats/{chat}/messages?limit=200" + (f"&before={before}" if before else "")
        status, out = api.call("GET", q)
        if status != 200:
            fail(f"GET {q}: {status} {out}")
        msgs = out["messages"]
        texts = [m.get("text") for m in msgs] + texts
        if not msgs or out.get("older") is None:
            return texts
        before = out["older"]


def wait_texts(api, want, what, timeout=TIMEOUT):
    """Waits until Ann's chat holds exactly `want` (each once, in order)."""
    deadline = time.monotonic() + timeout
    while True:
        got = stored_texts(api)
        if got == want:
            return
        if len(got) > len(want) or got != want[:len(got)] or time.monotonic() > deadline:
            fail(f"{what}: stored {len(got)} messages, expected {len(want)};"
                 f" first difference at {next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}")
        time.sleep(1)


def signed_in(port, when):
    """A new API session of the boot test's admin (after a reboot: the old one was the old
    boot's connection)."""
    api = Api(port)
    status, out = api.call("POST", "/api/v1/auth/login",
                           {"username": "admin", "password": "boot-test-password"})
    if status != 200:
        fail(f"login {when}: {status} {out}")
    return api

def small_bundle(path, compatible, version, cert, key):
    """A tiny signed verity bundle (random payload): lanbox's `rauc info` checks only the
    signature and the manifest, so it stands for an older or foreign bundle."""
    with tempfile.TemporaryDirectory() as content:
        with open(os.path.join(content, "rootfs.ext4"), "wb") as f:
            f.write(os.urandom(65536))
        with open(os.path.join(content, "manifest.raucm"), "w") as f:
            f.write(f"[update]\ncompatible={compatible}\nversion={version}\n\n"
                    "[bundle]\nformat=verity\n\n[image.rootfs]\nfilename=rootfs.ext4\n")
        subprocess.run(["rauc", "bundle", f"--cert={cert}", f"--key={key}", content, path],
                       check=True, capture_output=True)


def api_phase(disk, vars_fd, layout, grubenv, port, cert, results):
    """4. The update through lanbox's own API (RAUC's D-Bus service, the reboot request)."""
    manifest = dict(line.split("=", 1) for line in open(os.path.join(OUT, "manifest.txt"))
                    if "=" in line and not line.startswith("sfdisk"))
    compatible = manifest["compatible"].strip()
    env = grubenv.read()
    running = env.get("ORDER", "A B").split()[0]
    target = "B" if running == "A" else "A"
    # Boot 3 leaves slot B running IMAGE_VERSION.1; the new bundle must be newer than that.
    newer = manifest["version"].strip() + (".2" if running == "B" else ".1")
    say(f"boot 4: the update through lanbox's API: {running} -> {target}, version {newer}")
    bundles = {}
    rootfs = os.path.join(WORK, "rootfs-api.ext4")
    rootfs_with_version(os.path.join(OUT, "rootfs.ext4"), rootfs, newer)
    bundles["new"] = os.path.join(WORK, "api-new.raucb")
    subprocess.run([os.path.join(HERE, "bundle.sh"), BOARD, rootfs, bundles["new"]],
                   check=True, stdout=subprocess.DEVNULL)
    os.unlink(rootfs)
    other = os.path.join(os.path.dirname(OUT), "other-key")
    if not os.path.exists(os.path.join(other, "signing.cert.pem")):
        subprocess.run([os.path.join(HERE, "keys.sh"), "--other", other], check=True,
                       stdout=subprocess.DEVNULL)
    dev = os.path.join(HERE, "keys", "dev")
    bundles["old"] = os.path.join(WORK, "api-old.raucb")
    small_bundle(bundles["old"], compatible, "0.0.1", f"{dev}/signing.cert.pem",
                 f"{dev}/signing.key.pem")
    bundles["other"] = os.path.join(WORK, "api-other.raucb")
    small_bundle(bundles["other"], compatible, "999", f"{other}/signing.cert.pem",
                 f"{other}/signing.key.pem")
    # A newer bundle of ours with its signature cut off (the CMS blob and its 8-byte size).
    bundles["unsigned"] = os.path.join(WORK, "api-unsigned.raucb")
    small_bundle(bundles["unsigned"], compatible, "999", f"{dev}/signing.cert.pem",
                 f"{dev}/signing.key.pem")
    with open(bundles["unsigned"], "rb") as f:
        raw = f.read()
    with open(bundles["unsigned"], "wb") as f:
        f.write(raw[:len(raw) - 8 - int.from_bytes(raw[-8:], "big")])
    grubenv.set(EXTRA_CMDLINE="systemd.journald.forward_to_console=1")
    # The operator's configuration, on the data partition (the root is read-only): a larger
    # bundle limit than the default, which the update API then reports.
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write("[update]\nmax_bundle_mb = 321\n")
        f.flush()
        data = f"{disk}?offset={layout['data'] * MIB}"
        if "lanbox" not in subprocess.run(["debugfs", "-R", "ls -p /", data], check=True,
                                          capture_output=True, text=True).stdout:
            debugfs(data, "mkdir /lanbox")
        debugfs(data, "rm /lanbox/lanbox.toml")
        debugfs(data, f"write {f.name} /lanbox/lanbox.toml", "sif /lanbox/lanbox.toml mode 0100644")
    sim = BotSim(os.path.join(WORK, "boot4-telegram-sim.log"))
    before_update = [f"before the update {i:03}" for i in range(40)]
    after_update = [f"after the update {i:03}" for i in range(10)]
    q = Qemu(disk, vars_fd, os.path.join(WORK, "boot4.log"), port)
    try:
        at = q.wait_log(rf"lanbox: booting slot {running}")
        body = wait_serving(q, port)
        if cert and body.get("certificate_sha256") != cert:
            fail("another TLS certificate: the data partition was not kept")
        cert = body.get("certificate_sha256")
        before = wait_env(grubenv, q, {f"{running}_OK": "1", f"{running}_TRY": "0"})
        api = Api(port)
        status, setup = api.call("GET", "/api/v1/setup")
        if status == 200 and setup and setup.get("needed"):
            # The code lanbox printed at this start (journal forwarded to the serial console).
            codes = re.findall(r"enter the setup code ([A-Z0-9-]+)", q.text()[at:])
            if not codes:
                fail("no setup code in the serial log")
            status, out = api.call("POST", "/api/v1/setup", {
                "username": "admin", "password": "boot-test-password", "setup_code": codes[-1]})
            if status != 201:
                fail(f"POST /api/v1/setup: {status} {out}")
            say("first admin created with the setup code from the console")
        status, out = api.call("POST", "/api/v1/auth/login",
                               {"username": "admin", "password": "boot-test-password"})
        if status != 200 or not api.cookie:
            fail(f"login: {status} {out}")
        # The data partition grew into the rest of the disk at the first boot (systemd-repart,
        # then x-systemd.growfs), as lanbox sees it.
        status, stats = api.call("GET", "/api/v1/stats")
        total = (((stats or {}).get("system") or {}).get("storage") or {}).get("disk_total_bytes") or 0
        results["data_filesystem_mib"] = total // MIB
        if status != 200 or total < (layout["data-size"] + GROW_MIB // 2) * MIB:
            fail(f"the data partition did not grow into the disk: {status}, {total // MIB} MiB")
        say(f"data filesystem {total // MIB} MiB (the image's partition: {layout['data-size']} MiB)")
        # Telegram's messages before the update: a bot account on the simulator, Ann writes.
        status, out = api.call("POST", "/api/v1/accounts", {
            "token": BotSim.TOKEN, "name": "Boot test bot", "api_base": sim.api_base()})
        if status not in (201, 409):
            fail(f"POST /api/v1/accounts: {status} {out}")
        sim.inject(before_update)
        wait_texts(api, before_update, "messages before the update")
        say(f"{len(before_update)} messages ingested from the Bot API simulator before the update")
        status, st = api.call("GET", "/api/v1/system/update")
        if status != 200 or not st.get("available"):
            fail(f"GET /api/v1/system/update: {status} {st}")
        if st.get("max_bundle") != 321 * MIB:
            fail(f"the configuration on the data partition was not read: max_bundle {st.get('max_bundle')}")
        say("the configuration on the data partition is read ([update] max_bundle_mb = 321)")
        system = st["system"]
        names = sorted(s.get("bootname") or "" for s in system["slots"])
        if system.get("booted") != running or names[-2:] != ["A", "B"]:
            fail(f"update status does not show both slots and {running} booted: {system}")
        say(f"GET /api/v1/system/update: booted {system['booted']}, slots " + ", ".join(
            f"{s.get('bootname')}={s.get('state')}/{s.get('boot_status')}/{s.get('version')}"
            for s in system["slots"]) + f", target {st.get('target')}")
        booted_version = next((s.get("version") for s in system["slots"]
                               if s.get("bootname") == running), None)
        for name in ("other", "unsigned", "old"):
            status, out = api.call("PUT", "/api/v1/system/update/bundle", file=bundles[name])
            err = (out or {}).get("error") or {} if isinstance(out, dict) else {}
            if name == "old" and booted_version is None and status == 201:
                # RAUC knows no version for a slot it did not write (slot A as built), so
                # lanbox has nothing to compare with; the image's pre-install handler must
                # refuse the install instead.
                say("older bundle accepted by lanbox: RAUC has no version for the booted slot"
                    " (written by the image build); installing it must fail")
                status, out = api.call("POST", "/api/v1/system/update/install")
                inst = {}
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    _, st = api.call("GET", "/api/v1/system/update")
                    inst = (st or {}).get("install") or {}
                    if inst.get("state") in ("failed", "installed"):
                        break
                    time.sleep(1)
                if inst.get("state") != "failed":
                    fail(f"the older bundle's install did not fail: {status} {out} {inst}")
                say(f"older bundle's install failed: {(inst.get('error') or '')[:200]}")
                q.wait_log(r"downgrade refused", timeout=30)
                continue
            if status != 400 or err.get("code") != "bundle_refused":
                fail(f"the {name} bundle was not refused: {status} {out}")
            say(f"{name} bundle refused: {err.get('message', '')[:200]}")
            status, st = api.call("GET", "/api/v1/system/update")
            if st.get("bundle") is not None:
                fail(f"a refused bundle is staged: {st.get('bundle')}")
        if grubenv.read() != before:
            fail(f"a refused upload changed the boot variables: {before} -> {grubenv.read()}")
        t = time.monotonic()
        status, out = api.call("PUT", "/api/v1/system/update/bundle", file=bundles["new"],
                               timeout=600)
        results["api_upload_s"] = round(time.monotonic() - t, 1)
        if status != 201 or (out or {}).get("bundle", {}).get("version") != newer:
            fail(f"the newer bundle was not accepted: {status} {out}")
        say(f"newer bundle uploaded and checked in {results['api_upload_s']} s: {out}")
        t = time.monotonic()
        status, out = api.call("POST", "/api/v1/system/update/install")
        if status != 202:
            fail(f"POST install: {status} {out}")
        deadline = time.monotonic() + TIMEOUT
        seen = None
        while True:
            status, st = api.call("GET", "/api/v1/system/update")
            inst = (st or {}).get("install") or {}
            if (inst.get("state"), inst.get("percent")) != seen:
                seen = (inst.get("state"), inst.get("percent"))
                say(f"  install: {inst.get('state')} {inst.get('percent')}% {inst.get('message')}")
            if inst.get("state") == "installed":
                break
            if inst.get("state") == "failed":
                fail(f"the install failed: {inst.get('error')}")
            if time.monotonic() > deadline:
                fail(f"the install did not finish: {inst}")
            time.sleep(1)
        results["api_install_s"] = round(time.monotonic() - t, 1)
        env = wait_env(grubenv, q, {"ORDER": f"{target} {running}", f"{target}_OK": "1",
                                    f"{target}_TRY": "0"}, timeout=60)
        say(f"installed into {target} through lanbox in {results['api_install_s']} s; "
            f"last {st.get('last')}; grubenv {env}")
        at = len(q.text())
        status, out = api.call("POST", "/api/v1/system/reboot")
        if status != 202:
            fail(f"POST /api/v1/system/reboot: {status} {out}")
        t = time.monotonic()
        at = q.wait_log(rf"lanbox: booting slot {target}", after=at, timeout=300)
        q.wait_log(rf"root=PARTLABEL=rootfs-{target.lower()}", after=at)
        body = wait_serving(q, port)
        results["api_reboot_to_serving_s"] = round(time.monotonic() - t, 1)
        if body.get("certificate_sha256") != cert:
            fail("another TLS certificate after the update: the data partition was not kept")
        api = signed_in(port, "after the update")
        status, st = api.call("GET", "/api/v1/system/update")
        system = (st or {}).get("system") or {}
        last = (st or {}).get("last") or {}
        booted = [s for s in system.get("slots", []) if s.get("bootname") == target]
        if system.get("booted") != target or last.get("outcome") != "running" \
                or last.get("version") != newer:
            fail(f"after the reboot: booted {system.get('booted')}, last {last}")
        say(f"back on {target} {results['api_reboot_to_serving_s']} s after the reboot request,"
            f" same certificate, admin still there; last {last}; slot {booted}")
        # The messages of before are all there, once each, and ingest goes on from Telegram's
        # offset the old slot committed (nothing again, nothing skipped).
        wait_texts(api, before_update, "messages after the update")
        sim.inject(after_update)
        wait_texts(api, before_update + after_update, "messages sent after the update")
        say(f"after the update: the {len(before_update)} messages of before, each once, and"
            f" {len(after_update)} new ones ingested")
        env = wait_env(grubenv, q, {f"{target}_OK": "1", f"{target}_TRY": "0"})
        say(f"slot {target} marked good: {env}")
        bad_update_through_api(q, api, port, cert, grubenv, target, running, newer, sim,
                               before_update + after_update, results)
        say(f"powered off cleanly in {q.power_off()} s")
    finally:
        q.stop()
        sim.stop()
        for b in bundles.values():
            if os.path.exists(b):
                os.unlink(b)


def bad_update_through_api(q, api, port, cert, grubenv, good, other, version, sim, texts,
                           results):
    """5. A bad update installed through lanbox's API: a newer, correctly signed bundle whose
    lanbox exits 1. The box reboots into it, lanbox fails, systemd reboots (StartLimitAction),
    the never-confirmed slot is abandoned, and the good slot serves again: lanbox says
    `rolled_back`, the messages are all there and ingest goes on."""
    bad_version = version + ".1"
    say(f"boot 5: a bad update ({bad_version}, lanbox exits 1) through the API into {other}")
    rootfs = os.path.join(WORK, "rootfs-bad-api.ext4")
    bad = os.path.join(WORK, "rootfs-bad-api-broken.ext4")
    bundle = os.path.join(WORK, "api-bad.raucb")
    try:
        rootfs_with_version(os.path.join(OUT, "rootfs.ext4"), rootfs, bad_version)
        broken_slot(rootfs, bad)
        os.unlink(rootfs)
        subprocess.run([os.path.join(HERE, "bundle.sh"), BOARD, bad, bundle], check=True,
                       stdout=subprocess.DEVNULL)
        os.unlink(bad)
        status, out = api.call("PUT", "/api/v1/system/update/bundle", file=bundle, timeout=600)
        if status != 201 or (out or {}).get("bundle", {}).get("version") != bad_version:
            fail(f"the bad (but signed and newer) bundle was not accepted: {status} {out}")
    finally:
        for f in (rootfs, bad, bundle):
            if os.path.exists(f):
                os.unlink(f)
    status, out = api.call("POST", "/api/v1/system/update/install")
    if status != 202:
        fail(f"POST install of the bad bundle: {status} {out}")
    deadline = time.monotonic() + TIMEOUT
    while True:
        status, st = api.call("GET", "/api/v1/system/update")
        inst = (st or {}).get("install") or {}
        if inst.get("state") == "installed":
            break
        if inst.get("state") == "failed" or time.monotonic() > deadline:
            fail(f"the bad bundle's install: {inst}")
        time.sleep(1)
    wait_env(grubenv, q, {"ORDER": f"{other} {good}", f"{other}_OK": "1"}, timeout=60)
    at = len(q.text())
    status, out = api.call("POST", "/api/v1/system/reboot")
    if status != 202:
        fail(f"POST /api/v1/system/reboot: {status} {out}")
    at = q.wait_log(rf"lanbox: booting slot {other}", after=at, timeout=300)
    t_bad = time.monotonic()
    at = q.wait_log(rf"lanbox: booting slot {good}", after=at)
    body = wait_serving(q, port)
    results["api_bad_update_to_serving_s"] = round(time.monotonic() - t_bad, 1)
    if body.get("certificate_sha256") != cert:
        fail("another TLS certificate after the rollback: the data partition was not kept")
    api = signed_in(port, "after the rollback")
    status, st = api.call("GET", "/api/v1/system/update")
    system = (st or {}).get("system") or {}
    last = (st or {}).get("last") or {}
    if system.get("booted") != good or last.get("outcome") != "rolled_back" \
            or last.get("version") != bad_version:
        fail(f"after the bad update: booted {system.get('booted')}, last {last}")
    wait_texts(api, texts, "messages after the rollback")
    more = [f"after the rollback {i:03}" for i in range(5)]
    sim.inject(more)
    wait_texts(api, texts + more, "messages sent after the rollback")
    say(f"back on {good} {results['api_bad_update_to_serving_s']} s after the bad slot booted;"
        f" lanbox says {last.get('outcome')} ({last.get('version')}); {len(texts)} messages"
        f" there once each, {len(more)} new ones ingested")


if __name__ == "__main__":
    main()
