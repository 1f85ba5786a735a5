"""The metadata service, end to end, on the shared many-hosts stack (tests/e2e/multihost.py): a real
qemu guest on a tenant network asks http://169.254.169.254/ (the route its DHCP lease carries,
through its host's DHCP namespace, where the agent's proxy listens and forwards to the control
plane) and is answered as itself: its own uuid, hostname and key in
/openstack/latest/meta_data.json, its own address and key on the EC2 paths. A request it sends
from an address that is not its port's own gets no answer at all (the anti-spoofing rules drop
it before the proxy sees it). That another address gets another instance's data only when it is
that instance's is tested at the API: tests/unit/api/test_metadata.py.

The guest asks from its user data (which the tiny image runs from its config drive) and prints
what it got on its serial console, so the test reads what the guest itself saw. One guest.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest

from cloud.ids import ec2_id
from tests.e2e.multihost import Cloud, V, wait_for_text

pytestmark = pytest.mark.e2e

N = "/network/v2.0"
CIDR, ADDRESS, SPOOF = "192.168.70.0/24", "192.168.70.21", "192.168.70.99"
MD = "http://169.254.169.254"

SCRIPT = f"""#!/bin/sh
i=0
while [ $i -lt 90 ]; do
    timeout 5 wget -q -O /tmp/md.json {MD}/openstack/latest/meta_data.json 2>/dev/null && break
    sleep 1
    i=$((i + 1))
done
echo "MD-JSON $(tr -d '\\r\\n' </tmp/md.json)"
echo "MD-IPV4 $(timeout 5 wget -q -O - {MD}/latest/meta-data/local-ipv4)"
echo "MD-KEY $(timeout 5 wget -q -O - {MD}/latest/meta-data/public-keys/0/openssh-key)"
echo "MD-ID $(timeout 5 wget -q -O - {MD}/latest/meta-data/instance-id)"
via=$(ip route show 169.254.169.254 | sed -n 's/.* via \\([0-9.]*\\).*/\\1/p')
echo "MD-ROUTE $via"
ip addr add {SPOOF}/32 dev eth0
ip route replace 169.254.169.254 via "$via" dev eth0 src {SPOOF}
if timeout 5 wget -q -O /dev/null {MD}/openstack/latest/meta_data.json; then
    echo "MD-SPOOF answered"
else
    echo "MD-SPOOF none"
fi
echo "MD-DONE"
"""


def _line(text: str, tag: str) -> str:
    found = re.findall(rf"{tag} ([^\r\n]*)", text)
    assert found, f"no {tag} line on the console"
    return found[-1].strip()


def test_a_guest_is_answered_as_itself_by_the_metadata_service(multihost: Cloud,
                                                               tmp_path: Path) -> None:
    cloud = multihost
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public_key = (tmp_path / "key.pub").read_text().strip()
    response = cloud.api.post(f"{V}/os-keypairs", {"keypair": {"name": "mdkey",
                                                               "public_key": public_key}})
    assert response.status_code in (200, 201), response.text
    created = cloud.api.post(f"{N}/networks", {"network": {"name": "mdnet"}})
    assert created.status_code == 201, created.text
    network = created.json()["network"]
    server_id = ""
    try:
        subnet = cloud.api.post(f"{N}/subnets", {"subnet": {
            "network_id": network["id"], "cidr": CIDR, "ip_version": 4,
            "gateway_ip": "192.168.70.1"}})
        assert subnet.status_code == 201, subnet.text
        body = {"server": {
            "name": "md-guest", "imageRef": cloud.image, "flavorRef": "1",
            "networks": [{"uuid": network["id"], "fixed_ip": ADDRESS}],
            "availability_zone": "nova:compute-1", "key_name": "mdkey",
            "user_data": base64.b64encode(SCRIPT.encode()).decode(),
        }}
        booted = cloud.api.post(f"{V}/servers", body)
        assert booted.status_code == 202, booted.text
        server_id = booted.json()["server"]["id"]
        cloud.active(server_id)

        text = wait_for_text(cloud.console_log("compute-1", server_id), "MD-DONE")
        meta = json.loads(_line(text, "MD-JSON"))
        assert meta["uuid"] == server_id and meta["hostname"] == "md-guest"
        assert meta["public_keys"] == {"mdkey": public_key}
        assert _line(text, "MD-IPV4") == ADDRESS
        assert _line(text, "MD-KEY") == public_key
        # The EC2 API's id of this server (cloud/api/ec2: i- and the uuid's first 17 hex digits).
        assert _line(text, "MD-ID") == ec2_id("i", server_id)
        # The route went through the DHCP server of the guest's host on its network.
        ports = cloud.api.get(f"{N}/ports?network_id={network['id']}").json()["ports"]
        dhcp = [p["fixed_ips"][0]["ip_address"] for p in ports
                if p["device_owner"] == "network:dhcp"]
        assert _line(text, "MD-ROUTE") in dhcp
        # From a forged source address nothing answers.
        assert _line(text, "MD-SPOOF") == "none"
    finally:
        if server_id:
            cloud.delete(server_id)
        cloud.api.delete(f"{N}/networks/{network['id']}")
        cloud.api.delete(f"{V}/os-keypairs/mdkey")
