"""The host tasks that plug a volume into a guest and pull it out (contract 1.9).

Each runs through ManagerBase._act like every instance action: under the instance's lock, one
event back naming the volume (EVENT_VOLUME_ATTACHED / _DETACHED, or `action_failed` with
ACTION_ATTACH_VOLUME / _DETACH_VOLUME), and safe to repeat (the driver checks the definition
first). The volume's bytes are never on this host: qemu reaches its export itself.
"""

from __future__ import annotations

from compute_agent import messages as msg
from compute_agent.host_task import host_task
from compute_agent.manager_base import ManagerBase


class VolumeTasks(ManagerBase):
    @host_task(msg.TASK_ATTACH_VOLUME)
    def attach_volume(self, request: msg.VolumeAttachRequest) -> msg.InstanceEvent:
        device = request.device
        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_ATTACH_VOLUME,
            msg.EVENT_VOLUME_ATTACHED,
            lambda: {"power_state": self.driver.attach_volume(request.instance_uuid, device),
                     "volume_id": device.volume_id},
            on_failure={"volume_id": device.volume_id},
        )

    @host_task(msg.TASK_DETACH_VOLUME)
    def detach_volume(self, request: msg.VolumeAttachRequest) -> msg.InstanceEvent:
        volume_id = request.device.volume_id
        return self._act(
            request.request_id, request.instance_uuid, msg.ACTION_DETACH_VOLUME,
            msg.EVENT_VOLUME_DETACHED,
            lambda: {"power_state": self.driver.detach_volume(request.instance_uuid, volume_id),
                     "volume_id": volume_id},
            on_failure={"volume_id": volume_id},
        )
