"""The self-contained spawn request a compute agent gets: everything it needs, no database access."""

from __future__ import annotations

import uuid

from cloud.compute.models import Instance
from cloud.compute.services import hostname_for
from cloud.images.models import Image
from cloud.network.models import Port
from compute_agent import messages as msg


def build_spawn_request(instance: Instance, request_id: str) -> msg.SpawnRequest:
    return msg.SpawnRequest(
        request_id=request_id,
        instance_uuid=str(instance.uuid),
        name=instance.display_name,
        hostname=instance.hostname or hostname_for(instance.display_name),
        vcpus=instance.vcpus,
        memory_mb=instance.memory_mb,
        root_gb=instance.root_gb,
        image=_image_ref(instance.image_ref),
        networks=_networks(instance),
        user_data=instance.user_data or "",
        key_data=instance.key_data or "",
        metadata={str(k): str(v) for k, v in (instance.metadata or {}).items()},
    )


def _image_ref(image_ref: str) -> msg.ImageRef | None:
    if not image_ref:
        return None
    ref = msg.ImageRef(id=image_ref)
    try:
        image = Image.objects.filter(id=uuid.UUID(image_ref)).first()
    except ValueError:
        # Not a UUID: no Image row can match, the agent gets the bare id.
        image = None
    if image is not None:
        ref.checksum = image.checksum or ""
        ref.disk_format = image.disk_format or ref.disk_format
        ref.size = image.size or 0
    return ref


def _networks(instance: Instance) -> list[msg.NetworkInfo]:
    ports = Port.objects.filter(device_id=str(instance.uuid)).select_related("network")
    return [
        msg.NetworkInfo(
            network_id=str(port.network_id),
            network_name=port.network.name,
            port_id=str(port.id),
            mac_address=port.mac_address,
            ip_address=next(
                (ip.get("ip_address", "") for ip in port.fixed_ips or [] if ip.get("ip_address")),
                "",
            ),
        )
        for port in ports
    ]
