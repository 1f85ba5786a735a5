"""Volumes as qcow2 files served over NBD by one qemu-storage-daemon per volume host.

Why this back end: the kernels Kumo runs on here have no NBD client, no LIO target and no RBD, so
the serving side must live in userspace, and qemu attaches an NBD export natively (no kernel on
the compute host is involved either). One daemon holds every volume file open, with one NBD
server (TCP) and one writable export per volume, named by the volume id; it is driven over QMP
on a unix socket (compute_agent.volumes.qmp).

Layout of the volumes directory:

    <volume id>.qcow2             a volume; its snapshots are qcow2 internal snapshots inside it
    .part-<volume id>.qcow2       a copy being made for create(); renamed when complete
    .upload-<volume id>-<x>.qcow2 a consistent copy handed to open_for_upload()'s caller
    .qsd/qmp.sock, .qsd/qsd.pid   the daemon's monitor and pid file (run_dir)

Why internal snapshots: they are taken by the daemon that holds the file (QMP
blockdev-snapshot-internal-sync), so they work while a guest writes, and a snapshot's clusters
are copied-on-write from then on, never rewritten in place. That makes `qemu-img convert -U -l
snapshot.name=...` a consistent read of a file the daemon keeps open: this is how a volume is
cloned from a snapshot, from another volume (through a temporary snapshot) and uploaded as an
image. Snapshot work on one volume is serialised (one lock per volume id).

The daemon is started with --daemonize, so it outlives the agent: an agent restart finds it
answering and keeps it (guests keep their disks); a daemon found dead is started again and every
volume exported again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compute_agent import qemu_img
from compute_agent.locks import KeyedLocks
from compute_agent.volumes.backend import (
    Connection,
    FromImage,
    FromSnapshot,
    FromVolume,
    Source,
    VolumeBackend,
    VolumeBackendError,
    VolumeBusy,
    VolumeNotFound,
    check_id,
    size_bytes,
)
from compute_agent.volumes.qmp import Qmp, QmpError, QmpUnavailable

log = logging.getLogger(__name__)

QSD = os.environ.get("KUMO_QEMU_STORAGE_DAEMON", "qemu-storage-daemon")
DEFAULT_PORT = 10809  # NBD's registered port
_PARTIAL = ".part-"
_UPLOAD = ".upload-"
# Snapshots the back end takes for itself (a clone of a volume, an upload); one left by a crash
# is removed at start(). The control plane's snapshot ids are uuids, so they never look like this.
_TEMPORARY_SNAPSHOT = "kumo-tmp-"
_SOCKET_PATH_MAX = 107  # sun_path, less its terminating NUL


def export_id(volume_id: str) -> str:
    """The daemon's id of a volume's export (QEMU ids must begin with a letter; a uuid may
    not). The NBD export *name* clients ask for is the volume id itself."""
    return f"vol-{volume_id}"


def node_names(volume_id: str) -> tuple[str, str]:
    """The daemon's (file, qcow2) node names of a volume. QEMU caps node names at 31 characters
    and a uuid is 36, so they are named by a digest (stable across daemon restarts)."""
    digest = hashlib.sha256(volume_id.encode()).hexdigest()[:28]
    return f"kf{digest}", f"kq{digest}"


class NbdBackend(VolumeBackend):
    def __init__(
        self,
        volumes_dir: str | os.PathLike[str],
        *,
        export_host: str,
        port: int = DEFAULT_PORT,
        listen_host: str | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        netns: str = "",
    ) -> None:
        """`export_host` is the address compute hosts reach this host at; the NBD server listens
        on `listen_host` (the same by default). `netns` runs the daemon in that network
        namespace (a simulated host's), while the agent itself stays where it is."""
        self.dir = Path(volumes_dir)
        self.export_host = export_host
        self.listen_host = listen_host or export_host
        self.port = port
        self.run_dir = Path(run_dir) if run_dir is not None else self.dir / ".qsd"
        self.netns = netns
        self.pid_file = self.run_dir / "qsd.pid"
        self.qmp = Qmp(self.run_dir / "qmp.sock")
        self._locks = KeyedLocks()
        self._daemon_lock = threading.Lock()

    def path(self, volume_id: str) -> Path:
        return self.dir / f"{check_id(volume_id)}.qcow2"

    # --- the daemon ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the daemon (or keep the one that answers), serve every volume file, and remove
        what work cut short by a crash left. Meant for the agent's start-up, before it takes
        requests: a partial copy being made at this moment would be removed too."""
        with self._daemon_lock, _translated():
            self.dir.mkdir(parents=True, exist_ok=True)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for leftover in [*self.dir.glob(f"{_PARTIAL}*"), *self.dir.glob(f"{_UPLOAD}*")]:
                leftover.unlink(missing_ok=True)
            launched = not self.qmp.answers()
            if launched:
                self._launch()
            self._serve(launched, drop_temporary_snapshots=True)

    def ensure_running(self) -> bool:
        """Start the daemon again if it died, and serve every volume again; True if it had to.
        Cheap when it runs (one QMP round trip): for a periodic check."""
        with self._daemon_lock, _translated():
            if self.qmp.answers():
                return False
            log.warning("qemu-storage-daemon is not answering on %s; starting it", self.qmp.path)
            self._launch()
            self._serve(True, drop_temporary_snapshots=False)
            return True

    def stop(self) -> None:
        with self._daemon_lock:
            self._quit()

    def _quit(self) -> None:
        """Stop the daemon and wait until it is gone. By signal when its pid is known: QMP
        `quit` was seen to hang (no answer, no exit) after a failed nbd-server-start."""
        pid = self._daemon_pid()
        if pid is None:
            with contextlib.suppress(QmpUnavailable, QmpError):
                Qmp(self.qmp.path, timeout=5.0).execute("quit")
            return
        os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, 10.0):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)

    def _launch(self) -> None:
        socket_path = self.qmp.path
        if len(os.fsencode(socket_path)) > _SOCKET_PATH_MAX:
            raise VolumeBackendError(f"the monitor socket path {socket_path} is too long for a "
                                     "unix socket; give a shorter run_dir")
        stale = self._daemon_pid()
        if stale is not None:  # ours, alive, yet not answering: it is of no use to anyone
            log.warning("killing qemu-storage-daemon %d, which does not answer", stale)
            os.kill(stale, signal.SIGKILL)
            _wait_gone(stale, 5.0)
        socket_path.unlink(missing_ok=True)
        self.pid_file.unlink(missing_ok=True)
        prefix = ["nsenter", f"--net=/run/netns/{self.netns}", "--"] if self.netns else []
        argv = [
            *prefix, QSD,
            "--chardev", f"socket,path={_option(socket_path)},server=on,wait=off,id=kumo-qmp",
            "--monitor", "chardev=kumo-qmp",
            "--pidfile", _option(self.pid_file),
            # The parent exits once the monitor is up; the daemon outlives the agent.
            "--daemonize",
        ]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise VolumeBackendError(f"{QSD} did not start: {exc}") from exc
        if result.returncode != 0:
            raise VolumeBackendError(f"{QSD} did not start: {_last_line(result.stderr)}")
        log.info("qemu-storage-daemon %s started, monitor %s", self._daemon_pid(), socket_path)

    def _serve(self, launched: bool, *, drop_temporary_snapshots: bool) -> None:
        """Serve every volume; a daemon just launched that cannot serve is stopped again, so
        that the next ensure_running() starts over instead of finding it "running"."""
        try:
            self._serve_all(drop_temporary_snapshots=drop_temporary_snapshots)
        except Exception:
            if launched:
                self._quit()
            raise

    def _serve_all(self, *, drop_temporary_snapshots: bool) -> None:
        address = {"type": "inet", "data": {"host": self.listen_host, "port": str(self.port)}}
        try:
            self.qmp.execute("nbd-server-start", addr=address)
        except QmpError as exc:
            if "already running" not in exc.desc:
                raise VolumeBackendError(
                    f"cannot serve NBD on {self.listen_host}:{self.port}: {exc.desc}") from exc
        for volume_id in self._volume_ids():
            with self._locks.hold(volume_id):
                try:
                    self._export(volume_id)
                    if drop_temporary_snapshots:
                        for name in self._snapshot_names(volume_id):
                            if name.startswith(_TEMPORARY_SNAPSHOT):
                                self._delete_internal_snapshot(volume_id, name)
                except (VolumeBackendError, QmpError) as exc:
                    # One unreadable file must not keep every other volume offline.
                    log.error("volume %s is not served: %s", volume_id, exc)

    def _daemon_pid(self) -> int | None:
        """The pid in the pid file, if that process is alive and is our daemon."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        ours = os.fsencode(str(self.qmp.path)) in b" ".join(cmdline)
        return pid if ours and _alive(pid) else None

    # --- exports ------------------------------------------------------------------------------

    def _export(self, volume_id: str) -> None:
        """Open the volume's file in the daemon and export it; what is already done is kept."""
        file_node, qcow2_node = node_names(volume_id)
        nodes = self._nodes()
        if file_node not in nodes:
            self.qmp.execute("blockdev-add", driver="file", filename=str(self.path(volume_id)),
                             **{"node-name": file_node, "discard": "unmap"})
        if qcow2_node not in nodes:
            try:
                self.qmp.execute("blockdev-add", driver="qcow2", file=file_node,
                                 **{"node-name": qcow2_node, "discard": "unmap"})
            except QmpError:
                self.qmp.execute("blockdev-del", **{"node-name": file_node})
                raise
        if export_id(volume_id) not in self._exports():
            self.qmp.execute("block-export-add", type="nbd", id=export_id(volume_id),
                             name=volume_id,
                             writable=True, **{"node-name": qcow2_node})

    def _remove_export(self, volume_id: str) -> None:
        """Stop exporting the volume (its nodes stay open). VolumeBusy while a client is
        connected: an attached guest is never cut off from its disk here."""
        if export_id(volume_id) not in self._exports():
            return
        try:
            self.qmp.execute("block-export-del", id=export_id(volume_id), mode="safe")
        except QmpError as exc:
            if "in use" in exc.desc:
                raise VolumeBusy(f"volume {volume_id} is connected to a client "
                                 "(attached); detach it first") from exc
            raise
        deadline = time.monotonic() + 10.0
        while export_id(volume_id) in self._exports():  # the export goes away asynchronously
            if time.monotonic() > deadline:
                raise VolumeBackendError(f"the export of volume {volume_id} did not go away")
            time.sleep(0.02)

    def _close(self, volume_id: str) -> None:
        self._remove_export(volume_id)
        nodes = self._nodes()
        for node in reversed(node_names(volume_id)):  # the qcow2 node first: it uses the file
            if node in nodes:
                self.qmp.execute("blockdev-del", **{"node-name": node})

    def _exports(self) -> set[str]:
        return {export["id"] for export in self.qmp.execute("query-block-exports")}

    def _nodes(self) -> dict[str, dict[str, Any]]:
        nodes = self.qmp.execute("query-named-block-nodes", flat=True)
        return {node["node-name"]: node for node in nodes}

    def _volume_ids(self) -> list[str]:
        return sorted(path.stem for path in self.dir.glob("*.qcow2")
                      if not path.name.startswith("."))

    # --- volumes ------------------------------------------------------------------------------

    def create(self, volume_id: str, size_gb: int, source: Source = None) -> int:
        check_id(volume_id)
        wanted = size_bytes(size_gb)
        sources = [source.volume_id] if isinstance(source, FromSnapshot | FromVolume) else []
        with self._hold(volume_id, *sources), _translated():
            path = self.path(volume_id)
            if path.exists():  # a retried request: the copy was complete before its rename
                size = self._size(volume_id)
                if size < wanted:
                    raise VolumeBackendError(
                        f"volume {volume_id} already exists with {size} bytes, less than asked")
                self._export(volume_id)
                return size
            partial = self.dir / f"{_PARTIAL}{volume_id}.qcow2"
            partial.unlink(missing_ok=True)
            try:
                self._fill(partial, wanted, source)
                size = int(qemu_img.info(partial, "qcow2")["virtual-size"])
                if size < wanted:
                    qemu_img.resize(partial, "qcow2", wanted)
                    size = wanted
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
            self._export(volume_id)
            return size

    def _fill(self, target: Path, size: int, source: Source) -> None:
        if source is None:
            qemu_img.create(target, "qcow2", size)
        elif isinstance(source, FromImage):
            qemu_img.check_standalone(source.path, source.disk_format)
            qemu_img.convert(source.path, source.disk_format, target, "qcow2", force_share=False)
        elif isinstance(source, FromSnapshot):
            check_id(source.snapshot_id, "snapshot id")
            self._require(source.volume_id)
            if source.snapshot_id not in self._snapshot_names(source.volume_id):
                raise VolumeNotFound(f"volume {source.volume_id} has no snapshot "
                                     f"{source.snapshot_id}")
            qemu_img.convert(self.path(source.volume_id), "qcow2", target, "qcow2",
                             force_share=True, snapshot=source.snapshot_id)
        else:
            self._require(source.volume_id)
            with self._temporary_snapshot(source.volume_id) as name:
                qemu_img.convert(self.path(source.volume_id), "qcow2", target, "qcow2",
                                 force_share=True, snapshot=name)

    def delete(self, volume_id: str) -> None:
        with self._locks.hold(check_id(volume_id)), _translated():
            self._close(volume_id)
            self.path(volume_id).unlink(missing_ok=True)

    def extend(self, volume_id: str, new_size_gb: int) -> int:
        new_size = size_bytes(new_size_gb)
        with self._locks.hold(check_id(volume_id)), _translated():
            self._require(volume_id)
            size = self._size(volume_id)
            if new_size < size:
                raise VolumeBackendError(f"volume {volume_id} has {size} bytes; volumes only grow")
            if new_size == size:
                return size
            # The export's own use of the node forbids resizing it: take it away meanwhile (which
            # is also what refuses to resize under an attached guest).
            self._remove_export(volume_id)
            try:
                self.qmp.execute("block_resize", size=new_size,
                                 **{"node-name": node_names(volume_id)[1]})
            finally:
                self._export(volume_id)
            return new_size

    def snapshot(self, volume_id: str, snapshot_id: str) -> None:
        check_id(snapshot_id, "snapshot id")
        with self._locks.hold(check_id(volume_id)), _translated():
            self._require(volume_id)
            if snapshot_id not in self._snapshot_names(volume_id):
                self.qmp.execute("blockdev-snapshot-internal-sync", name=snapshot_id,
                                 device=node_names(volume_id)[1])

    def delete_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        check_id(snapshot_id, "snapshot id")
        with self._locks.hold(check_id(volume_id)), _translated():
            if not self.path(volume_id).exists():
                return
            self._export(volume_id)
            if snapshot_id in self._snapshot_names(volume_id):
                self._delete_internal_snapshot(volume_id, snapshot_id)

    def snapshots(self, volume_id: str) -> list[str]:
        with self._locks.hold(check_id(volume_id)), _translated():
            self._require(volume_id)
            return [name for name in self._snapshot_names(volume_id)
                    if not name.startswith(_TEMPORARY_SNAPSHOT)]

    def connection(self, volume_id: str) -> Connection:
        if not self.path(volume_id).exists():
            raise VolumeNotFound(f"volume {volume_id} does not exist on this host")
        return {"driver_volume_type": "nbd", "host": self.export_host, "port": self.port,
                "export": volume_id}

    def capacity(self) -> tuple[int, int]:
        stat = os.statvfs(self.dir)
        gib = 1024**3
        return stat.f_blocks * stat.f_frsize // gib, stat.f_bavail * stat.f_frsize // gib

    def volumes(self) -> dict[str, int]:
        with _translated():
            nodes = self._nodes()
            sizes = {}
            for volume_id in self._volume_ids():
                node = nodes.get(node_names(volume_id)[1])
                if node is not None:
                    sizes[volume_id] = int(node["image"]["virtual-size"])
                else:  # not served (unreadable at start): still the host's, still reported
                    with contextlib.suppress(qemu_img.QemuImgError, FileNotFoundError):
                        info = qemu_img.info(self.path(volume_id), "qcow2", force_share=True)
                        sizes[volume_id] = int(info["virtual-size"])
            return sizes

    @contextlib.contextmanager
    def open_for_upload(self, volume_id: str) -> Iterator[Path]:
        target = self.dir / f"{_UPLOAD}{check_id(volume_id)}-{uuid.uuid4().hex[:8]}.qcow2"
        try:
            with self._locks.hold(volume_id), _translated():
                self._require(volume_id)
                with self._temporary_snapshot(volume_id) as name:
                    qemu_img.convert(self.path(volume_id), "qcow2", target, "qcow2",
                                     force_share=True, snapshot=name)
            yield target
        finally:
            target.unlink(missing_ok=True)

    # --- helpers (the caller holds the volume's lock) -----------------------------------------

    @contextlib.contextmanager
    def _hold(self, *volume_ids: str) -> Iterator[None]:
        """Hold several volumes' locks, always taken in one order so two holders never wait on
        each other."""
        with contextlib.ExitStack() as stack:
            for volume_id in sorted(set(volume_ids)):
                stack.enter_context(self._locks.hold(volume_id))
            yield

    def _require(self, volume_id: str) -> None:
        if not self.path(volume_id).exists():
            raise VolumeNotFound(f"volume {volume_id} does not exist on this host")
        self._export(volume_id)

    def _size(self, volume_id: str) -> int:
        self._export(volume_id)
        node = self._nodes()[node_names(volume_id)[1]]
        return int(node["image"]["virtual-size"])

    def _snapshot_names(self, volume_id: str) -> list[str]:
        node = self._nodes().get(node_names(volume_id)[1])
        if node is None:
            return []
        return [snap["name"] for snap in node["image"].get("snapshots", [])]

    def _delete_internal_snapshot(self, volume_id: str, name: str) -> None:
        self.qmp.execute("blockdev-snapshot-delete-internal-sync", name=name,
                         device=node_names(volume_id)[1])

    @contextlib.contextmanager
    def _temporary_snapshot(self, volume_id: str) -> Iterator[str]:
        name = f"{_TEMPORARY_SNAPSHOT}{uuid.uuid4().hex[:12]}"
        self.qmp.execute("blockdev-snapshot-internal-sync", name=name,
                         device=node_names(volume_id)[1])
        try:
            yield name
        finally:
            self._delete_internal_snapshot(volume_id, name)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """The errors of the tools underneath, as the back end's own."""
    try:
        yield
    except QmpUnavailable as exc:
        raise VolumeBackendError(
            f"the volume service (qemu-storage-daemon) is not running: {exc}") from exc
    except QmpError as exc:
        raise VolumeBackendError(str(exc)) from exc
    except qemu_img.QemuImgError as exc:
        raise VolumeBackendError(str(exc)) from exc


def _option(path: Path) -> str:
    return str(path).replace(",", ",,")  # a comma ends a value in QEMU's option syntax


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


def _alive(pid: int) -> bool:
    """Running, and not a zombie: a daemonized process is reaped by init, sometimes late."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
