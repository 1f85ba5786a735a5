"""Making and removing an instance's domain: spawn and destroy.

Domains are persistent (define, then start): if qemu dies, a persistent domain stays visible as
shut off/crashed instead of vanishing, so the reconciler can still see it. Rebuild and resize are
compositions of these and the power actions, in compute_agent.drivers.base.Driver.
"""

from __future__ import annotations

import logging

import libvirt

from compute_agent import messages as msg
from compute_agent.domain_xml import build_domain_xml, canonical_uuid
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt.connection import LibvirtBase
from compute_agent.drivers.libvirt.states import domain_power_state
from compute_agent.image_cache import DEFAULT_MAX_IDLE
from compute_agent.instance_disks import prepare

LOG = logging.getLogger(__name__)

# Newest first: the test driver and older daemons reject the flags they do not know (with
# VIR_ERR_INVALID_ARG), and a plain undefine() is the last resort.
_UNDEFINE_FLAG_SETS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
)


class LifecycleMixin(LibvirtBase):
    def _domain_xml(self, request: msg.SpawnRequest) -> str:
        if self.is_container:
            return self._container_xml(request)
        vnc_socket = self.vnc_socket_path(request.instance_uuid)
        if not self.has_disks:
            return build_domain_xml(
                request, domain_type=self.domain_type, vnc_listen=self.vnc_listen,
                vnc_socket=vnc_socket, block_devices=request.block_devices,
            )
        # Downloads and qemu-img run here, outside the connection lock, so one slow image does
        # not hold up every other operation on the host.
        prepared = prepare(request, self.files, self.image_cache)
        self._ensure_vnc_socket_dir()
        return build_domain_xml(
            request,
            domain_type=self.domain_type,
            vnc_listen=self.vnc_listen,
            vnc_socket=vnc_socket,
            disks=prepared.disks,
            serial_log_path=prepared.serial_log_path,
            mac_addresses=self.nics(request.networks),
            video_model="vga",
            machine="pc",
            block_devices=request.block_devices,
        )

    def spawn(self, request: msg.SpawnRequest) -> str:
        instance_uuid = canonical_uuid(request.instance_uuid)
        if self.has_disks and self.power_state(instance_uuid) in (
            msg.POWER_RUNNING, msg.POWER_PAUSED
        ):
            # Its disks are in use: leave them (and the guest) exactly as they are.
            LOG.info("domain %s is already active, leaving it as it is", instance_uuid)
            return self.power_state(instance_uuid)
        xml = self._domain_xml(request)

        def spawn_on(conn: libvirt.virConnect) -> str:
            domain = self._lookup(conn, instance_uuid)
            if domain is not None and domain.isActive():
                LOG.info("domain %s is already active, leaving it as it is", instance_uuid)
                return domain_power_state(domain)
            # Defining again over an inactive domain refreshes its definition, so a retried spawn
            # boots what this request asks for rather than what an earlier attempt wrote.
            domain = conn.defineXML(xml)
            try:
                domain.create()
            except libvirt.libvirtError:
                if not domain.isActive():
                    raise
                LOG.info("domain %s was started concurrently", instance_uuid)
            else:
                self._container_started(domain)
            return domain_power_state(domain)

        return self._call(f"spawn of {instance_uuid}", spawn_on)

    def destroy(self, instance_uuid: str) -> None:
        instance_uuid = canonical_uuid(instance_uuid)

        def destroy_on(conn: libvirt.virConnect) -> None:
            domain = self._lookup(conn, instance_uuid)
            if domain is None:
                return
            try:
                if domain.isActive():
                    domain.destroy()
                if domain.isPersistent():
                    self._undefine(domain)
            except libvirt.libvirtError as exc:
                # Something else removed it between our checks and our action: the goal is met.
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise

        self._call(f"destroy of {instance_uuid}", destroy_on)
        self._container_removed(instance_uuid)
        try:
            self.files.remove_instance_dir(instance_uuid)
            self._remove_vnc_socket(instance_uuid)
        except OSError as exc:
            raise DriverError(f"cannot remove the files of {instance_uuid}: {exc}") from exc

    @staticmethod
    def _undefine(domain: libvirt.virDomain) -> None:
        for flags in _UNDEFINE_FLAG_SETS:
            try:
                domain.undefineFlags(flags)
                return
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
                    raise
        domain.undefine()

    def sweep_image_cache(self, max_idle: float = DEFAULT_MAX_IDLE) -> list[str]:
        if not self.has_disks:
            return []
        removed = self.image_cache.sweep(self.files.bases_in_use(), max_idle=max_idle)
        return removed + self._sweep_rootfs_trees() if self.is_container else removed
