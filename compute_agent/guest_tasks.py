"""The host tasks that save, rescue or re-plumb a guest: rescue and unrescue, shelve (and its
offload and unshelve on this host), backups, crash dumps, and NICs plugged in or out.

Each runs through ManagerBase._act like every instance action: under the instance's lock, one
event back (its own, or `action_failed` naming the action), and safe to repeat (the driver checks
the real state first). An offloaded guest leaves no tombstone: an unshelve may bring it back to
this very host through an ordinary spawn.
"""

from __future__ import annotations

import logging
import os
import tempfile

from compute_agent import image_transfer
from compute_agent import messages as msg
from compute_agent.host_task import host_task
from compute_agent.manager_base import ManagerBase

LOG = logging.getLogger(__name__)


class GuestTasks(ManagerBase):
    def upload_root_disk(self, request: msg.SnapshotRequest) -> int:
        """Copy the root disk to a scratch file, PUT it to the image API, remove the copy; the
        bytes sent."""
        os.makedirs(self.driver.scratch_dir, mode=0o755, exist_ok=True)
        fd, target = tempfile.mkstemp(prefix="snapshot-", dir=self.driver.scratch_dir)
        os.close(fd)
        try:
            os.unlink(target)  # qemu-img makes the file itself
            self.driver.snapshot(request.instance_uuid, target)
            size = image_transfer.upload(request.upload_url, request.token, target)
        finally:
            if os.path.exists(target):
                os.unlink(target)
        LOG.info("disk of %s uploaded as image %s (%d bytes)",
                 request.instance_uuid, request.image_id, size)
        return size

    # --- rescue

    @host_task(msg.TASK_RESCUE)
    def rescue(self, request: msg.RescueRequest) -> msg.InstanceEvent:
        def operation() -> dict[str, str]:
            if request.spawn is not None:
                self.plug(request.instance_uuid, request.spawn.networks)
            return {"power_state": self.driver.rescue(request)}

        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_RESCUE, msg.EVENT_RESCUED,
            operation,
        )

    @host_task(msg.TASK_UNRESCUE)
    def unrescue(self, request: msg.SpawnRequest) -> msg.InstanceEvent:
        def operation() -> dict[str, str]:
            self.plug(request.instance_uuid, request.networks)
            return {"power_state": self.driver.unrescue(request)}

        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_UNRESCUE, msg.EVENT_UNRESCUED,
            operation,
        )

    # --- shelve

    @host_task(msg.TASK_SHELVE)
    def shelve(self, request: msg.SnapshotRequest) -> msg.InstanceEvent:
        """Shut the guest down, upload its disk (if it has one to upload) and, with `offload`,
        remove it from this host."""

        def operation() -> dict[str, str]:
            self.driver.stop(request.instance_uuid, max(0, request.stop_timeout))
            if request.upload_url:
                # Without one the guest's root disk is a volume: it stays where it is.
                self.upload_root_disk(request)
            if request.offload:
                self.driver.destroy(request.instance_uuid)
                self.unplug_quietly(request.instance_uuid)
            return {"power_state": self.driver.power_state(request.instance_uuid),
                    "image_id": request.image_id}

        done = msg.EVENT_SHELVE_OFFLOADED if request.offload else msg.EVENT_SHELVED
        return self._act(request.request_id, request.instance_uuid, msg.ACTION_SHELVE, done,
                         operation)

    @host_task(msg.TASK_SHELVE_OFFLOAD)
    def shelve_offload(self, request: msg.PowerRequest) -> msg.InstanceEvent:
        """Remove a shelved guest from this host; its disk is safe in its shelve image."""

        def operation() -> dict[str, str]:
            self.driver.destroy(request.instance_uuid)
            self.unplug_quietly(request.instance_uuid)
            return {"power_state": self.driver.power_state(request.instance_uuid)}

        return self._act(request.request_id, request.instance_uuid, msg.ACTION_SHELVE_OFFLOAD,
                         msg.EVENT_SHELVE_OFFLOADED, operation)

    @host_task(msg.TASK_UNSHELVE)
    def unshelve(self, request: msg.PowerRequest) -> msg.InstanceEvent:
        """Start a shelved guest that is still on this host."""
        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_UNSHELVE, msg.EVENT_UNSHELVED,
            lambda: {"power_state": self.driver.start(request.instance_uuid)},
        )

    # --- backups and crash dumps

    @host_task(msg.TASK_BACKUP)
    def backup(self, request: msg.SnapshotRequest) -> msg.InstanceEvent:
        def operation() -> dict[str, str]:
            self.upload_root_disk(request)
            return {"power_state": self.driver.power_state(request.instance_uuid),
                    "image_id": request.image_id}

        return self._act(request.request_id, request.instance_uuid, msg.ACTION_BACKUP,
                         msg.EVENT_BACKUP_UPLOADED, operation)

    @host_task(msg.TASK_TRIGGER_CRASH_DUMP)
    def trigger_crash_dump(self, request: msg.PowerRequest) -> msg.InstanceEvent:
        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_TRIGGER_CRASH_DUMP,
            msg.EVENT_CRASH_DUMP_TRIGGERED,
            lambda: {"power_state": self.driver.trigger_crash_dump(request.instance_uuid)},
        )

    # --- NICs

    @host_task(msg.TASK_ATTACH_INTERFACE)
    def attach_interface(self, request: msg.InterfaceRequest) -> msg.InstanceEvent:
        return self._interfaces(request, msg.ACTION_ATTACH_INTERFACE, msg.EVENT_INTERFACE_ATTACHED)

    @host_task(msg.TASK_DETACH_INTERFACE)
    def detach_interface(self, request: msg.InterfaceRequest) -> msg.InstanceEvent:
        return self._interfaces(request, msg.ACTION_DETACH_INTERFACE, msg.EVENT_INTERFACE_DETACHED)

    def _interfaces(
        self, request: msg.InterfaceRequest, action: str, success: str
    ) -> msg.InstanceEvent:
        """`request.networks` are all the NICs the guest is to have: a new port is plugged
        before the domain gets its NIC, a port that went is unplugged after its NIC left."""
        uuid = request.instance_uuid

        def operation() -> dict[str, str]:
            self.plug(uuid, request.networks)
            state = self.driver.set_interfaces(uuid, self.driver.nics(request.networks))
            kept = {port.port_id for port in request.networks}
            gone = [port_id for port_id in self.network.port_ids(uuid) if port_id not in kept]
            if gone:
                self.network.unplug(uuid, gone)
            return {"power_state": state, "port_id": request.port_id}

        return self._act(request.request_id, uuid, action, success, operation,
                         on_failure={"port_id": request.port_id})
