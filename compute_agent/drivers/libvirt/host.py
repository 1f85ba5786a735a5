"""What the host report needs from libvirt: the hypervisor's capacity and identity, and every
instance domain with its power state and VNC port or socket; and the host's preparation when
the agent starts."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import libvirt

from compute_agent import messages as msg
from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import DriverError, HostInfo
from compute_agent.drivers.libvirt import incoming
from compute_agent.drivers.libvirt.connection import LibvirtBase
from compute_agent.drivers.libvirt.states import domain_power_state


class HostMixin(LibvirtBase):
    # A running domain's VNC listener stays where it is until the domain stops, so it is read from
    # its XML once per run of the domain ((name, id) -> (port, socket)) rather than in every
    # report: parsing every guest's XML each time grew with the guests.
    _vnc_listeners: dict[tuple[str, int], tuple[int, str]]

    def list_domains(self) -> list[msg.DomainState]:
        known: dict[tuple[str, int], tuple[int, str]] = getattr(self, "_vnc_listeners", {})
        seen: dict[tuple[str, int], tuple[int, str]] = {}

        def list_on(conn: libvirt.virConnect) -> list[msg.DomainState]:
            found = []
            for domain in conn.listAllDomains(0):
                name = domain.name()
                if not _is_instance_domain_name(name):
                    continue  # e.g. the test driver's own "test" domain, or an operator's VM
                try:
                    found.append(self._domain_state(domain, name, known, seen))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise  # anything but "undefined while we were listing" is a real error
            return sorted(found, key=lambda d: d.uuid)

        listed = self._call("listing domains", list_on)
        self._vnc_listeners = seen  # only the runs still there
        return listed

    def domain_states(self, instance_uuids: Sequence[str]) -> list[msg.DomainState]:
        # One lookup per named domain, whatever else the host runs: this follows every task.
        wanted = [canonical_uuid(u) for u in instance_uuids]

        def states_on(conn: libvirt.virConnect) -> list[msg.DomainState]:
            known = getattr(self, "_vnc_listeners", {})
            self._vnc_listeners = known
            found = []
            for instance_uuid in wanted:
                try:
                    domain = self._lookup(conn, instance_uuid)
                    found.append(msg.DomainState(instance_uuid, msg.POWER_NOSTATE)
                                 if domain is None else
                                 self._domain_state(domain, instance_uuid, known, known))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
                    found.append(msg.DomainState(instance_uuid, msg.POWER_NOSTATE))
            return found

        return self._call("reading domains", states_on)

    def _domain_state(
        self, domain: libvirt.virDomain, name: str,
        known: dict[tuple[str, int], tuple[int, str]],
        seen: dict[tuple[str, int], tuple[int, str]],
    ) -> msg.DomainState:
        run = (name, domain.ID())
        listener = known.get(run) if run[1] > 0 else None
        port, socket = listener if listener is not None else _vnc_listen(domain)
        if run[1] > 0:
            seen[run] = (port, socket)
        return msg.DomainState(
            uuid=name, power_state=domain_power_state(domain), vnc_port=port,
            vnc_socket=self.reported_vnc_socket(socket) if socket else "",
        )

    def init_host(self) -> None:
        """The instances tree, the VNC socket directory and, on a host that takes migrations,
        the storage pool other hosts send cold migrations' disks into (incoming.py)."""
        if not self.has_disks:
            return
        try:
            self.files.ensure_dirs()
        except OSError as exc:
            raise DriverError(f"cannot make the instances directory: {exc}") from exc
        self._ensure_vnc_socket_dir()
        if self.takes_migrations:
            path = self.files.incoming_dir
            self._call("defining the incoming storage pool",
                       lambda conn: incoming.ensure_pool(conn, path))

    def host_info(self) -> HostInfo:
        def info_on(conn: libvirt.virConnect) -> tuple[list[Any], int, str, str, str]:
            return (
                conn.getInfo(),
                conn.getVersion(),
                conn.getHostname(),
                conn.getType(),
                conn.getCapabilities(),
            )

        info, version, hostname, hv_type, capabilities = self._call("host info", info_on)
        # getInfo(): [model, memory MiB, cpus, MHz, NUMA nodes, sockets, cores, threads]
        return HostInfo(
            vcpus=int(info[2]),
            memory_mb=int(info[1]),
            local_gb=self._local_gb(),
            hypervisor_type=hv_type,
            hypervisor_version=int(version),
            hypervisor_hostname=hostname,
            cpu_info=_cpu_info(capabilities, info),
        )

    def _local_gb(self) -> int:
        """Size of the file system that holds the instances directory.

        That is where instance disks go, so it is the disk capacity that matters on every URI;
        the test driver reports no storage of its own anyway. Before the directory exists (first
        run) the nearest existing parent stands in for it, since that is where it will be made.
        """
        path = self.instances_dir.absolute()
        while not path.exists() and path != path.parent:
            path = path.parent
        return shutil.disk_usage(path).total // (1024**3)


# An instance's domain is named by its uuid in canonical form (what str(uuid.UUID(name)) gives):
# matched rather than parsed, since a heartbeat asks it of every domain.
_INSTANCE_DOMAIN_NAME = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _is_instance_domain_name(name: str) -> bool:
    return _INSTANCE_DOMAIN_NAME.fullmatch(name) is not None


def _vnc_listen(domain: libvirt.virDomain) -> tuple[int, str]:
    """Where the running domain's VNC display listens: the port libvirt gave it (autoport), or
    -1 and the unix socket it listens on instead; (-1, "") without one.

    Only the live XML has the port; an inactive domain's definition keeps port -1.
    """
    if not domain.isActive():
        return -1, ""
    graphics = ET.fromstring(domain.XMLDesc(0)).find("./devices/graphics[@type='vnc']")
    if graphics is None:
        return -1, ""
    listen = graphics.find("listen[@type='socket']")
    socket = graphics.get("socket") or (listen.get("socket", "") if listen is not None else "")
    if socket:
        return -1, socket
    try:
        port = int(graphics.get("port", "-1"))
    except ValueError:
        return -1, ""
    return (port if port > 0 else -1), ""


def _cpu_info(capabilities_xml: str, info: list[Any]) -> dict[str, Any]:
    cpu = ET.fromstring(capabilities_xml).find("./host/cpu")
    result: dict[str, Any] = {
        "arch": "",
        "model": str(info[0]),
        "vendor": "",
        "mhz": int(info[3]),
        "topology": {"sockets": int(info[5]), "cores": int(info[6]), "threads": int(info[7])},
        "features": [],
    }
    if cpu is None:
        return result
    result["arch"] = cpu.findtext("arch", "")
    result["model"] = cpu.findtext("model", "") or result["model"]
    result["vendor"] = cpu.findtext("vendor", "")
    topology = cpu.find("topology")
    if topology is not None:
        result["topology"] = {
            key: int(topology.get(key, result["topology"].get(key, 0)))
            for key in ("sockets", "cores", "threads")
        }
    result["features"] = sorted(f.get("name", "") for f in cpu.findall("feature"))
    return result
