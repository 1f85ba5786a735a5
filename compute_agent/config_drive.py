"""The config drive: an ISO 9660 image labelled `config-2` that tells the guest who it is, in the
OpenStack layout cloud-init and similar tools read:

    openstack/latest/meta_data.json     uuid, name, hostname, keys, zone, launch index, project
    openstack/latest/user_data          the user's data, when there is any
    openstack/latest/network_data.json  links and networks, one per port

Built in Python (pycdlib), so no genisoimage/xorriso is needed on the host. Rock Ridge and Joliet
carry the lower-case names; the plain ISO 9660 names are their upper-case 8.3-ish shadows.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
from pathlib import Path
from typing import Any

from compute_agent import messages as msg

VOLUME_LABEL = "config-2"
LATEST = "openstack/latest"


def meta_data(request: msg.SpawnRequest) -> dict[str, Any]:
    data: dict[str, Any] = {
        "uuid": request.instance_uuid,
        "name": request.name,
        "hostname": request.hostname,
        "launch_index": request.launch_index,
        "availability_zone": request.availability_zone or None,
        "meta": dict(request.metadata),
    }
    if request.project_id:
        data["project_id"] = request.project_id
    if request.key_data:
        key_name = request.key_name or "default"
        data["public_keys"] = {key_name: request.key_data}
        data["keys"] = [{"name": key_name, "type": "ssh", "data": request.key_data}]
    return data


def network_data(request: msg.SpawnRequest) -> dict[str, Any]:
    links, networks = [], []
    for index, nic in enumerate(request.networks):
        link_id = f"tap{nic.port_id[:11]}"
        links.append(
            {
                "id": link_id,
                "type": "phy",
                "ethernet_mac_address": nic.mac_address,
                "mtu": None,
                "vif_id": nic.port_id,
            }
        )
        network: dict[str, Any] = {
            "id": f"network{index}",
            "link": link_id,
            "network_id": nic.network_id,
        }
        if nic.ip_address:
            network |= {"type": "ipv4", "ip_address": nic.ip_address}
        else:
            network["type"] = "ipv4_dhcp"
        networks.append(network)
    return {"links": links, "networks": networks, "services": []}


def files_for(request: msg.SpawnRequest) -> dict[str, bytes]:
    """Path inside the drive → content."""
    files = {
        f"{LATEST}/meta_data.json": json.dumps(meta_data(request), sort_keys=True).encode(),
        f"{LATEST}/network_data.json": json.dumps(network_data(request), sort_keys=True).encode(),
    }
    if request.user_data:
        # The API hands user data over base64-encoded, as Nova's does; the guest gets the bytes.
        files[f"{LATEST}/user_data"] = _user_data_bytes(request.user_data)
    return files


def _user_data_bytes(user_data: str) -> bytes:
    try:
        return base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        return user_data.encode()


def _iso_name(part: str, *, is_file: bool) -> str:
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in part.upper())
    if is_file:
        stem, _, ext = part.upper().rpartition(".")
        if stem:
            stem = "".join(c if c.isalnum() or c == "_" else "_" for c in stem)
            ext = "".join(c if c.isalnum() or c == "_" else "_" for c in ext)
            return f"{stem[:30]}.{ext[:3]};1"
        return f"{name[:30]}.;1"
    return name[:31]


def build(target: Path, request: msg.SpawnRequest) -> None:
    """Write the config drive for `request` to `target` (atomically: a temporary file, renamed)."""
    # Imported on the first config drive, not with the agent: most boots never build one.
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=3, sys_ident="LINUX", vol_ident=VOLUME_LABEL, joliet=3, rock_ridge="1.09"
    )
    made: set[str] = set()
    try:
        for path, content in sorted(files_for(request).items()):
            parts = path.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory in made:
                    continue
                iso.add_directory(
                    "/" + "/".join(_iso_name(p, is_file=False) for p in parts[:depth]),
                    rr_name=parts[depth - 1],
                    joliet_path="/" + directory,
                )
                made.add(directory)
            iso.add_fp(
                io.BytesIO(content),
                len(content),
                "/" + "/".join(
                    _iso_name(p, is_file=i == len(parts) - 1) for i, p in enumerate(parts)
                ),
                rr_name=parts[-1],
                joliet_path="/" + path,
            )
        partial = target.with_name(f".{target.name}.partial")
        iso.write(os.fspath(partial))
    finally:
        iso.close()
    partial.chmod(0o644)
    os.replace(partial, target)
