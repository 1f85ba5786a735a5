"""Block storage on a volume host: the back end interface (backend.py), the NBD back end that
serves qcow2 volumes from qemu-storage-daemon (nbd.py, its QMP client qmp.py) and an in-memory fake
for tests (fake.py). docs/volumes.md says how it is wired and what was measured."""

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
    parse_source,
)

__all__ = [
    "Connection",
    "FromImage",
    "FromSnapshot",
    "FromVolume",
    "Source",
    "VolumeBackend",
    "VolumeBackendError",
    "VolumeBusy",
    "VolumeNotFound",
    "parse_source",
]
