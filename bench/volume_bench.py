"""NBD volume figures on simulated hosts: a real tiny guest on compute-1 whose volume is served by
qemu-storage-daemon (compute_agent.volumes.nbd) on storage-1, across the hosts' fabric bridge.

    sudo .venv/bin/python -m bench.volume_bench [--mib 64] [--runs 2]

Measures, printing one line per figure with the load average beside it:

- hot attach and detach of the NBD disk (`virsh attach-device --live` / `detach-device --live`):
  the call, and until the guest sees the disk (or it is gone from the domain);
- sequential write (dd conv=fsync) and read (caches dropped first) in the guest, on the NBD
  volume and, in the same guest and run, on a local qcow2 file disk (the TCG baseline), against
  `qemu-img bench` on the host over the same NBD export and on a qcow2 file in the volumes
  directory (no network);
- whether libvirt accepts `<reconnect delay='N'/>` in an nbd <source>, and whether the guest's
  disk works again after the daemon is restarted (with and without it);
- live migration of the guest to compute-2 with the NBD disk attached, `--copy-storage-all
  --migrate-disks vda` (the root disk copied, the network disk not), and without
  --migrate-disks (does libvirt leave the network disk alone by itself?); the volume's marker is
  read back on the destination.

Needs root and var/guest/kumo-tiny.qcow2 (make image); run it under `flock /tmp/me/e2e.lock`.
Everything it makes goes with the tag (`python -m simhosts down --tag volbench`), also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

from compute_agent.volumes.nbd import NbdBackend
from simhosts import hosts, storage

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "var" / "guest" / "kumo-tiny.qcow2"
TAG = "volbench"
VOLUME = "b3c0ffee-0000-4000-8000-00000000b001"
GUEST = "volbench-g1"
STEPS = ["attach", "throughput", "reconnect", "migrate"]


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def say(text: str) -> None:
    print(f"{text}   [{load()}]", flush=True)


def virsh(uri: str, *args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True,
                            timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"virsh {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout + result.stderr


def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


class Console:
    """The guest's serial shell over its unix socket: one command at a time, with its output."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0

    def run(self, command: str, timeout: float = 120) -> tuple[int, str]:
        self.count += 1
        marker = f"__DONE{self.count}__"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.path))
            sock.settimeout(0.5)
            sock.sendall(f"{command}; echo {marker}$?\n".encode())
            buffer, deadline = "", time.monotonic() + timeout
            while time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    buffer += sock.recv(65536).decode(errors="replace")
                found = re.search(re.escape(marker) + r"(\d+)", buffer)
                if found:
                    return int(found.group(1)), buffer[:found.start()].replace("\r", "")
        raise RuntimeError(f"no answer from the guest to {command!r}: {buffer[-300:]!r}")

    def wait_ready(self, timeout: float = 180) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with contextlib.suppress(OSError, RuntimeError):
                if self.run("echo ready", timeout=3)[0] == 0:
                    return time.monotonic() - start
            time.sleep(0.5)
        raise RuntimeError("the guest's shell did not answer")


def domain_xml(name: str, root_disk: str, serial: str) -> str:
    domain = ET.Element("domain", type="qemu")
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "memory", unit="MiB").text = "192"
    ET.SubElement(domain, "vcpu").text = "1"
    os_ = ET.SubElement(domain, "os")
    ET.SubElement(os_, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(ET.SubElement(domain, "features"), "acpi")
    devices = ET.SubElement(domain, "devices")
    disk = ET.SubElement(devices, "disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=root_disk)
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    chardev = ET.SubElement(devices, "serial", type="unix")
    ET.SubElement(chardev, "source", mode="bind", path=serial)
    ET.SubElement(chardev, "target", port="0")
    return ET.tostring(domain, encoding="unicode")


def nbd_disk_xml(conn: dict, dev: str, reconnect: int | None = None) -> str:
    disk = ET.Element("disk", type="network", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="raw", cache="none")
    source = ET.SubElement(disk, "source", protocol="nbd", name=conn["export"])
    ET.SubElement(source, "host", name=conn["host"], port=str(conn["port"]))
    if reconnect is not None:
        ET.SubElement(source, "reconnect", delay=str(reconnect))
    ET.SubElement(disk, "target", dev=dev, bus="virtio")
    ET.SubElement(disk, "serial").text = conn["export"][:20]
    return ET.tostring(disk, encoding="unicode")


def file_disk_xml(path: str, dev: str) -> str:
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2", cache="none")
    ET.SubElement(disk, "source", file=path)
    ET.SubElement(disk, "target", dev=dev, bus="virtio")
    return ET.tostring(disk, encoding="unicode")


def dumped_bytes(dump: str) -> bytes:
    """The bytes of `qemu-io read -v` output (its text column shows '-' as '.': read the hex)."""
    rows = re.findall(r"^[0-9a-f]{8}: ((?: [0-9a-f]{2})+)", dump, re.MULTILINE)
    return bytes.fromhex("".join(rows).replace(" ", ""))


def write_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class Bench:
    def __init__(self, mib: int, runs: int, steps: set[str]) -> None:
        self.mib, self.runs, self.steps = mib, runs, steps
        self.computes = hosts.up(TAG, 2)
        self.store = storage.up(TAG, 1)[0]
        self.c1, self.c2 = self.computes
        self.backend = NbdBackend(self.store.volumes_dir, export_host=self.store.ip,
                                  netns=self.store.netns, run_dir=self.store.dir / "qsd")
        self.backend.start()
        self.work = hosts.BASE / TAG / "bench"
        self.work.mkdir(parents=True, exist_ok=True)

    # --- the guest

    def boot(self) -> Console:
        root = "/var/lib/kumo/instances/" + GUEST + ".qcow2"
        subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", str(IMAGE),
                        str(self.c1.dir / "instances" / f"{GUEST}.qcow2")], check=True)
        serial = f"/run/libvirt/qemu/{GUEST}.serial"
        xml = write_file(self.work / "domain.xml", domain_xml(GUEST, root, serial))
        virsh(self.c1.uri, "define", str(xml))
        start = time.monotonic()
        virsh(self.c1.uri, "start", GUEST)
        console = Console(self.c1.dir / "run" / "qemu" / f"{GUEST}.serial")
        until(console.path.exists, 30, "the serial socket")
        console.wait_ready()
        say(f"guest booted to its shell in {time.monotonic() - start:.1f} s")
        return console

    def guest_has(self, console: Console, dev: str) -> bool:
        return console.run(f"grep -q ' {dev}$' /proc/partitions")[0] == 0

    def attach(self, uri: str, xml: str, console: Console, dev: str) -> tuple[float, float]:
        path = write_file(self.work / f"{dev}.xml", xml)
        start = time.monotonic()
        virsh(uri, "attach-device", GUEST, str(path), "--live")
        call = time.monotonic() - start
        until(lambda: self.guest_has(console, dev), 60, f"{dev} in the guest")
        return call, time.monotonic() - start

    def detach(self, uri: str, console: Console, dev: str) -> tuple[float, float]:
        path = self.work / f"{dev}.xml"
        start = time.monotonic()
        virsh(uri, "detach-device", GUEST, str(path), "--live")
        call = time.monotonic() - start
        until(lambda: dev not in virsh(uri, "domblklist", GUEST), 60, f"{dev} gone")
        until(lambda: not self.guest_has(console, dev), 60, f"{dev} gone from the guest")
        return call, time.monotonic() - start

    # --- throughput

    def guest_dd(self, console: Console, dev: str) -> tuple[float, float]:
        """(write, read) MB/s of dd on /dev/<dev> in the guest, timed by the guest's clock."""
        count = self.mib
        timed = ("a=$(cut -d' ' -f1 /proc/uptime); {cmd} >/dev/null 2>&1; r=$?; "
                 "b=$(cut -d' ' -f1 /proc/uptime); echo T $a $b $r")
        write = f"dd if=/dev/zero of=/dev/{dev} bs=1M count={count} conv=fsync"
        read = (f"sync; echo 3 >/proc/sys/vm/drop_caches; "
                f"dd if=/dev/{dev} of=/dev/null bs=1M count={count}")
        rates = []
        for cmd in (write, read):
            _, out = console.run(timed.format(cmd=cmd), timeout=600)
            found = re.search(r"T ([\d.]+) ([\d.]+) (\d+)", out)
            if not found or found.group(3) != "0":
                raise RuntimeError(f"dd in the guest failed: {out[-300:]}")
            seconds = float(found.group(2)) - float(found.group(1))
            rates.append(count * 1.048576 / max(seconds, 0.01))
        return rates[0], rates[1]

    # --- the measurements

    def run(self) -> None:
        conn = dict(self.backend.connection(VOLUME)) if VOLUME in self.backend.volumes() else None
        if conn is None:
            self.backend.create(VOLUME, 1)
            conn = dict(self.backend.connection(VOLUME))
        say(f"volume {VOLUME} served at nbd://{conn['host']}:{conn['port']}/{conn['export']}")
        console = self.boot()

        if "attach" in self.steps:
            self.attach_detach(conn, console)
        if "throughput" in self.steps:
            self.throughput(conn, console)
        if "reconnect" in self.steps:
            self.reconnect(conn, console)
        if "migrate" in self.steps:
            self.migrate(conn, console)

    def attach_detach(self, conn: dict, console: Console) -> None:
        for run in range(self.runs):
            call, seen = self.attach(self.c1.uri, nbd_disk_xml(conn, "vdb"), console, "vdb")
            say(f"hot attach #{run + 1}: virsh {call:.2f} s, in the guest after {seen:.2f} s")
            call, gone = self.detach(self.c1.uri, console, "vdb")
            say(f"hot detach #{run + 1}: virsh {call:.2f} s, gone from guest after {gone:.2f} s")

    def throughput(self, conn: dict, console: Console) -> None:
        """The NBD volume and a local file disk in the same guest, and the host's view."""
        local = self.c1.dir / "instances" / "local.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(local), "1G"], check=True)
        self.attach(self.c1.uri, nbd_disk_xml(conn, "vdb"), console, "vdb")
        self.attach(self.c1.uri, file_disk_xml("/var/lib/kumo/instances/local.qcow2", "vdc"),
                    console, "vdc")
        for run in range(self.runs):
            w, r = self.guest_dd(console, "vdb")
            say(f"guest dd {self.mib} MiB on the NBD volume #{run + 1}: write {w:.1f} MB/s, "
                f"read {r:.1f} MB/s")
            w, r = self.guest_dd(console, "vdc")
            say(f"guest dd {self.mib} MiB on a local qcow2 file #{run + 1}: write {w:.1f} MB/s, "
                f"read {r:.1f} MB/s")
        url = f"nbd://{conn['host']}:{conn['port']}/{conn['export']}"
        in_c2 = ["nsenter", f"--net=/run/netns/{self.c2.netns}", "--"]
        sibling = self.store.volumes_dir / "hostfile.qcow2.bench"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(sibling), "1G"], check=True)
        for run in range(self.runs):
            nbd_w = self._bench_in(in_c2, ["-f", "raw", url], write=True)
            nbd_r = self._bench_in(in_c2, ["-f", "raw", url], write=False)
            file_w = self._bench_in([], ["-f", "qcow2", str(sibling)], write=True)
            file_r = self._bench_in([], ["-f", "qcow2", str(sibling)], write=False)
            say(f"host qemu-img bench {self.mib} MiB #{run + 1}: over NBD from compute-2 write "
                f"{nbd_w:.1f} MB/s read {nbd_r:.1f} MB/s; qcow2 file in the volumes dir write "
                f"{file_w:.1f} MB/s read {file_r:.1f} MB/s")
        sibling.unlink()
        self.detach(self.c1.uri, console, "vdc")
        self.detach(self.c1.uri, console, "vdb")

    def _bench_in(self, prefix: list[str], target: list[str], *, write: bool) -> float:
        """MB/s of `qemu-img bench` with 1 MiB requests at queue depth 1 (dd's pattern), one
        flush at the end of a write run (dd's conv=fsync)."""
        argv = [*prefix, "qemu-img", "bench", "-s", "1M", "-c", str(self.mib), "-d", "1"]
        argv += ["-w", "--flush-interval", str(self.mib)] if write else []
        start = time.monotonic()
        subprocess.run([*argv, *target], check=True, capture_output=True, timeout=600)
        return self.mib * 1.048576 / (time.monotonic() - start)

    def reconnect(self, conn: dict, console: Console) -> None:
        """Restart the daemon under an attached guest: do the guest's reads and writes work
        again, at once or after a while, with and without <reconnect delay>?"""
        for delay in (5, None):
            xml = nbd_disk_xml(conn, "vdb", reconnect=delay)
            try:
                self.attach(self.c1.uri, xml, console, "vdb")
            except RuntimeError as exc:
                say(f"attach with <reconnect delay='{delay}'/> refused: {exc}")
                continue
            kept = "<reconnect" in virsh(self.c1.uri, "dumpxml", GUEST)
            say(f"attach with reconnect={delay}: accepted; kept in the live XML: {kept}")
            start = time.monotonic()
            self.backend.stop()
            time.sleep(1.0)
            self.backend.start()
            say(f"qemu-storage-daemon restarted in {time.monotonic() - start:.2f} s (1 s down)")
            results = []
            for attempt in range(4):
                code, _ = console.run(
                    "echo 3 >/proc/sys/vm/drop_caches; "
                    f"dd if=/dev/vdb of=/dev/null bs=64k count=16 skip={100 + attempt * 16} "
                    f"2>/dev/null && dd if=/dev/zero of=/dev/vdb bs=64k count=16 "
                    f"seek={300 + attempt * 16} conv=fsync 2>/dev/null", timeout=120)
                results.append(f"{time.monotonic() - start:.1f}s:{'ok' if code == 0 else 'EIO'}")
                time.sleep(2.0)
            _, errors = console.run("dmesg | grep -c 'I/O error'")
            say(f"guest I/O after the restart, reconnect={delay}: {' '.join(results)}; "
                f"I/O errors in dmesg: {errors.splitlines()[-1].strip() if errors else '?'}")
            console.run("dmesg -c >/dev/null")
            self.detach(self.c1.uri, console, "vdb")

    def migrate(self, conn: dict, console: Console) -> None:
        self.attach(self.c1.uri, nbd_disk_xml(conn, "vdb", reconnect=5), console, "vdb")
        console.run("echo volume-marker-42 | dd of=/dev/vdb bs=512 seek=4096 conv=fsync")
        size = subprocess.run(
            ["qemu-img", "info", "-U", "-f", "qcow2", "--output=json",
             str(self.c1.dir / "instances" / f"{GUEST}.qcow2")],
            capture_output=True, text=True, check=True).stdout
        virtual = re.search(r'"virtual-size": (\d+)', size).group(1)  # type: ignore[union-attr]
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2",
                        str(self.c2.dir / "instances" / f"{GUEST}.qcow2"), virtual], check=True)
        attempts = [("without --migrate-disks", []), ("--migrate-disks vda", ["--migrate-disks",
                                                                               "vda"])]
        source, target = self.c1, self.c2
        for label, extra in attempts:
            start = time.monotonic()
            result = subprocess.run(
                ["virsh", "-c", source.uri, "migrate", "--live", "--p2p", "--persistent",
                 "--undefinesource", "--copy-storage-all", *extra, GUEST, target.peer_uri],
                capture_output=True, text=True, timeout=300, check=False)
            took = time.monotonic() - start
            if result.returncode != 0:
                say(f"live migration {source.name}→{target.name} {label}: FAILED in {took:.1f} s: "
                    f"{result.stderr.strip()}")
                continue
            console = Console(target.dir / "run" / "qemu" / f"{GUEST}.serial")
            # from the disk, not the guest's page cache (its memory came along)
            _, out = console.run("echo 3 >/proc/sys/vm/drop_caches; "
                                 "dd if=/dev/vdb bs=512 skip=4096 count=1 2>/dev/null "
                                 "| head -c 16")
            marker = f"written-on-{target.name}"
            code, _ = console.run(f"echo {marker} | dd of=/dev/vdb bs=512 seek=4097 conv=fsync")
            url = f"nbd://{conn['host']}:{conn['port']}/{conn['export']}"
            seen = subprocess.run(
                ["nsenter", f"--net=/run/netns/{self.store.netns}", "--", "qemu-io", "-r",
                 "-f", "raw", url, "-c", f"read -v {4097 * 512} 32"],
                capture_output=True, text=True, check=False).stdout
            say(f"live migration {source.name}→{target.name} {label}: {took:.1f} s; old marker "
                f"read from the volume there: {'volume-marker-42' in out}; a write there "
                f"(exit {code}) reached the volume: {marker.encode() in dumped_bytes(seen)}; "
                f"disks: {virsh(target.uri, 'domblklist', GUEST).split()[-4:]}")
            # the way back for the next attempt: the root disk's file must exist there
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2",
                            str(source.dir / "instances" / f"{GUEST}.qcow2"), virtual],
                           check=False)
            source, target = target, source

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.backend.stop()
        hosts.down(TAG)


@contextlib.contextmanager
def bench(mib: int, runs: int, steps: set[str]) -> Iterator[Bench]:
    made = None
    try:
        made = Bench(mib, runs, steps)
        yield made
    finally:
        if made is not None:
            made.close()
        else:
            hosts.down(TAG)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="MiB per dd/bench run")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=STEPS, default=STEPS)
    args = parser.parse_args()
    if not IMAGE.exists():
        raise SystemExit(f"{IMAGE} is missing: make image")
    say(f"volume bench, {args.mib} MiB, {args.runs} runs")
    with bench(args.mib, args.runs, set(args.only)) as made:
        made.run()


if __name__ == "__main__":
    main()
