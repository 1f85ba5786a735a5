"""A cold move: the source shuts the guest down and sends its disk (drivers/libvirt/incoming.py);
the destination puts the disk in place and starts the guest from its SpawnRequest.

The source keeps its domain (shut off) and its disk until the move is confirmed (a DESTROY
there), so a revert only has to start it again. The disk that travels is the instance's qcow2
overlay as it is; the destination fetched the image it is built on when it prepared.
"""

from __future__ import annotations

import logging
import os

import libvirt

from compute_agent import messages as msg
from compute_agent.domain_xml import canonical_uuid, local_disk_targets
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt import incoming, peers
from compute_agent.drivers.libvirt.connection import LibvirtBase, NoSuchInstance
from compute_agent.drivers.libvirt.power import WrongState
from compute_agent.instance_disks import ROOT_DEVICE, boots_from_volume, check_received_disk

LOG = logging.getLogger(__name__)


class ColdMigrationMixin(LibvirtBase):
    def migrate_disk(self, instance_uuid: str, dest_uri: str, *, stop_timeout: float) -> str:
        instance_uuid = canonical_uuid(instance_uuid)
        if self.power_state(instance_uuid) == msg.POWER_NOSTATE:
            raise NoSuchInstance(f"instance {instance_uuid} has no domain on this host")
        if not self.has_disks:
            return self.stop(instance_uuid, stop_timeout)  # the test driver has no disk to send
        peers.check_peer_uri(dest_uri)
        disk = self.files.disk(instance_uuid)
        if not disk.is_file():
            if self._boots_from_volume(instance_uuid):
                # Its disk is a volume the destination reaches itself: only the guest stops here.
                return self.stop(instance_uuid, stop_timeout)
            raise DriverError(f"instance {instance_uuid} has no root disk on this host")
        # The destination is asked first, so that a move it cannot take leaves the guest running.
        with peers.peer(dest_uri) as dconn:
            if peers.power_state_on(dconn, dest_uri, instance_uuid) != msg.POWER_NOSTATE:
                LOG.info("instance %s already runs on %s; its disk was sent", instance_uuid,
                         dest_uri)
                return self.power_state(instance_uuid)
            state = self.stop(instance_uuid, stop_timeout)
            if state not in (msg.POWER_SHUTDOWN, msg.POWER_CRASHED):
                raise WrongState(f"instance {instance_uuid} did not shut down ({state})")
            size = incoming.upload(dconn, dest_uri, self.files.incoming_disk_name(instance_uuid),
                                   disk)
        LOG.info("disk of %s (%d bytes) sent to %s", instance_uuid, size, dest_uri)
        return state

    def finish_migration(self, request: msg.SpawnRequest) -> str:
        instance_uuid = canonical_uuid(request.instance_uuid)
        if self.has_disks and not boots_from_volume(request) and self.power_state(
            instance_uuid) not in (msg.POWER_RUNNING, msg.POWER_PAUSED):
            self._take_received_disk(instance_uuid)
        # spawn keeps the disk, grows it to the request's root size, writes the config drive,
        # defines and starts the domain; an active one it leaves as it is.
        return self.spawn(request)

    def _boots_from_volume(self, instance_uuid: str) -> bool:
        def read(conn: libvirt.virConnect) -> str:
            domain = self._lookup(conn, instance_uuid)
            return "" if domain is None else domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)

        xml = self._call("reading the definition", read)
        return bool(xml) and ROOT_DEVICE not in local_disk_targets(xml)

    def _take_received_disk(self, instance_uuid: str) -> None:
        received = self.files.incoming_disk(instance_uuid)
        disk = self.files.disk(instance_uuid)
        if received.is_file():
            check_received_disk(received, self.image_cache)
            self.files.make_instance_dir(instance_uuid)
            os.replace(received, disk)
            self._call("refreshing the incoming pool", incoming.refresh)
        elif not disk.is_file():
            # A new disk from the image would boot, but without anything the guest wrote.
            raise DriverError(f"the disk of instance {instance_uuid} never arrived on this host")
