"""A container resized on its host (issue 19): its host defines it again with the new flavor's
memory and CPU limits and starts it (its changes kept: the same root filesystem), the resize is
confirmed like a VM's, and a revert gives the old limits back. The cgroup's values are read in
lxc-1's mount namespace, where the cgroup v1 hierarchy LXC uses is mounted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.lxc import TIMEOUT, V, action, cgroup_value, host_of, wait_console
from tests.stack import ApiClient, Stack


@pytest.fixture(scope="module")
def flavors(lxc_cloud) -> Iterator[tuple[str, str]]:
    _, api, _, _ = lxc_cloud
    made = []
    for name, ram, vcpus in (("ct.small", 96, 1), ("ct.large", 160, 2)):
        answer = api.post(f"{V}/flavors", {"flavor": {"name": name, "ram": ram, "vcpus": vcpus,
                                                       "disk": 1}})
        assert answer.status_code == 200, answer.text
        made.append(answer.json()["flavor"]["id"])
    yield made[0], made[1]
    for flavor_id in made:
        api.delete(f"{V}/flavors/{flavor_id}")


def limits(stack: Stack, server_id: str) -> tuple[int, int]:
    """(memory limit in MiB, CPU shares) of the container's cgroup on lxc-1."""
    return (int(cgroup_value(stack, "memory", server_id, "memory.limit_in_bytes")) // 2**20,
            int(cgroup_value(stack, "cpu", server_id, "cpu.shares")))


def resize(api: ApiClient, server_id: str, flavor_id: str) -> None:
    action(api, server_id, {"resize": {"flavorRef": flavor_id}})
    found = api.wait_for(server_id, {"VERIFY_RESIZE", "ERROR", "ACTIVE"}, timeout=TIMEOUT)
    assert found["status"] == "VERIFY_RESIZE", found.get("fault")


def test_a_container_is_resized_on_its_host_and_reverted(lxc_cloud, flavors):
    stack, api, _, ct_image = lxc_cloud
    small, large = flavors
    created = api.post(f"{V}/servers", {"server": {
        "name": "ct-resize", "imageRef": ct_image, "flavorRef": small, "networks": "none"}})
    assert created.status_code == 202, created.text
    server = created.json()["server"]["id"]
    try:
        assert api.wait_for(server, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)["status"] == "ACTIVE"
        wait_console(api, server, rf"ct-resize {server} up")
        assert limits(stack, server) == (96, 1024)

        resize(api, server, large)
        assert limits(stack, server) == (160, 2048)
        assert host_of(api, server) == "lxc-1"
        wait_console(api, server, rf"ct-resize {server} up", count=2)  # started again
        confirmed = api.post(f"{V}/servers/{server}/action", {"confirmResize": None})
        assert confirmed.status_code == 204, confirmed.text
        shown = api.wait_for(server, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)
        assert (shown["status"], shown["flavor"]["original_name"]) == ("ACTIVE", "ct.large")

        resize(api, server, small)
        action(api, server, {"revertResize": None})
        shown = api.wait_for(server, {"ACTIVE", "ERROR"}, timeout=TIMEOUT)
        assert (shown["status"], shown["flavor"]["original_name"]) == ("ACTIVE", "ct.large")
        assert limits(stack, server) == (160, 2048)
    finally:
        api.delete(f"{V}/servers/{server}")
        api.wait_gone(server, timeout=TIMEOUT)
