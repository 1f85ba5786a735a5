"""Containers (libvirt's LXC driver, an `lxc://` URI): what differs from a VM's lifecycle.

A container host runs the same driver as a qemu host; these hooks are where the two part:
* its definition is compute_agent.container_xml's, over an overlay of the image's root
  filesystem (compute_agent.container_rootfs), mounted before every start since a host's
  reboot drops mounts, and unmounted before its directory is removed; its snapshot (and so its
  backup and shelve) is a tar of that overlay's merged view (drivers/libvirt/snapshot.py);
* its console is a pty libvirt does not log (the LXC driver ignores <log>), so after each start a
  `cat` of the pty, in a session of its own so it outlives an agent restart, appends to the
  instance's console.log, the file console_output reads for VMs too; it ends with the container
  (the pty's read fails once its last writer is gone);
* each NIC's host end must carry its port's tap name, which every rule of the data plane matches
  (security groups, anti-spoofing): the definition asks for it, and a veth libvirt named
  otherwise is renamed after each start and, for running containers, on every new connection
  to libvirtd (an agent or libvirtd restarted between a start and its renaming);
* a clean shutdown is a SIGTERM to the container's init (libvirt's default, /dev/initctl, is
  something a small init does not have: the container would then run on until the timeout).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt

from compute_agent import container_rootfs
from compute_agent import messages as msg
from compute_agent.container_xml import build_container_xml, veths_to_name
from compute_agent.domain_xml import canonical_uuid
from compute_agent.drivers.base import DriverError
from compute_agent.drivers.libvirt.connection import LibvirtBase, running_domains
from compute_agent.instance_files import BASE_MARKER_NAME
from compute_agent.network.base import NetworkError

LOG = logging.getLogger(__name__)


class ContainerMixin(LibvirtBase):
    def _container_xml(self, request: msg.SpawnRequest) -> str:
        # An unshelve boots from the image its root filesystem was shelved to (its own changes
        # in it), as a VM's disk is built on its shelve snapshot (instance_disks.prepare).
        image = request.restore_from or request.image
        if image is None:
            raise DriverError("a container needs an image of its root filesystem; it cannot "
                              "boot from a volume")
        instance_uuid = canonical_uuid(request.instance_uuid)
        rootfs = self._existing_rootfs(instance_uuid)
        if rootfs is None:
            cached = self.image_cache.fetch(image)
            tree = container_rootfs.base_tree(self.image_cache, cached)
            self.files.make_instance_dir(instance_uuid)
            self.files.record_base(instance_uuid, cached.path)
            rootfs = container_rootfs.mount_overlay(self.files, instance_uuid, tree)
        try:
            return build_container_xml(request, rootfs=os.fspath(rootfs),
                                       nics=self.nics(request.networks))
        except ValueError as exc:
            raise DriverError(f"container {instance_uuid}: {exc}") from exc

    def _existing_rootfs(self, instance_uuid: str) -> Path | None:
        """The root filesystem a spawn here already made, mounted: a resize, its revert or a
        retried spawn defines the container again over the same tree and changes, never over
        the request's image (after an unshelve that is not the tree it runs on, and recording it
        as the base would let the cache sweep remove the tree still in use). None when there is
        none (a first spawn, a rebuild: its destroy removed the directory)."""
        marker = self.files.path(instance_uuid, BASE_MARKER_NAME)
        if not marker.exists() or not container_rootfs.tree_of_marker(
                self.image_cache, marker).is_dir():
            return None
        return container_rootfs.ensure_mounted(self.files, self.image_cache, instance_uuid)

    def _container_starting(self, instance_uuid: str) -> None:
        """Before a stopped container starts again: its root filesystem mounted."""
        if not self.is_container:
            return
        if not self.files.path(instance_uuid, BASE_MARKER_NAME).exists():
            return  # not made here by spawn (nothing to mount); libvirt will say what is wrong
        container_rootfs.ensure_mounted(self.files, self.image_cache, instance_uuid)

    def _container_started(self, domain: libvirt.virDomain) -> None:
        """After a container started: its veths named as its ports' taps, its console copied
        into its console.log. A veth that cannot be named would carry none of its port's rules:
        the container is stopped again and the start fails. A VM's start goes by: qemu logs its
        console itself (<log>), and its taps are named by their definition."""
        if not self.is_container:
            return
        instance_uuid = canonical_uuid(domain.UUIDString())
        try:
            self._name_veths(domain)
        except (NetworkError, libvirt.libvirtError) as exc:
            LOG.error("container %s: its NICs could not be named as its ports (%s); "
                      "stopping it", instance_uuid, exc)
            self._destroy_quietly(domain)
            raise DriverError(f"container {instance_uuid}: its NIC is not named as its port's "
                              f"tap, so its security groups would not hold: {exc}") from exc
        self._log_console(domain, instance_uuid)

    def _name_veths(self, domain: libvirt.virDomain) -> None:
        defined = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        for current, wanted, bridge in veths_to_name(defined, domain.XMLDesc(0)):
            self.name_nic(current, wanted, bridge)

    def _connected(self, conn: libvirt.virConnect) -> None:
        super()._connected(conn)
        if self.is_container:
            self._name_running_veths(conn)

    def _name_running_veths(self, conn: libvirt.virConnect) -> None:
        """Every running container's veths, named again where they are not (on a new
        connection: a start may have happened without its renaming)."""
        for domain in running_domains(conn, "to check their NICs"):
            try:
                self._name_veths(domain)
            except (NetworkError, libvirt.libvirtError) as exc:
                LOG.error("container %s: its NICs could not be named as its ports: %s",
                          domain.name(), exc)

    @staticmethod
    def _destroy_quietly(domain: libvirt.virDomain) -> None:
        try:
            domain.destroy()
        except libvirt.libvirtError:
            LOG.warning("could not stop %s", domain.name(), exc_info=True)

    def _log_console(self, domain: libvirt.virDomain, instance_uuid: str) -> None:
        tty = ET.fromstring(domain.XMLDesc(0)).find("devices/console")
        path = tty.get("tty") if tty is not None else None
        if not path or not path.startswith("/dev/pts/"):
            LOG.warning("container %s has no console pty to log", instance_uuid)
            return
        log = self.files.console_log(instance_uuid)
        cat = shutil.which("cat") or "/bin/cat"
        with open(log, "ab") as out:
            subprocess.Popen([cat, path], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)

    def _container_removed(self, instance_uuid: str) -> None:
        """After its domain is gone, before its directory goes."""
        if self.is_container:
            container_rootfs.unmount(self.files, instance_uuid)

    def _shutdown(self, domain: libvirt.virDomain) -> None:
        if self.is_container:
            domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_SIGNAL)
        else:
            domain.shutdown()

    def _sweep_rootfs_trees(self) -> list[str]:
        removed = []
        for tree in container_rootfs.unused_trees(self.image_cache):
            shutil.rmtree(tree, ignore_errors=True)
            removed.append(f"{container_rootfs.ROOTFS_DIR_NAME}/{tree.name}")
        return removed
