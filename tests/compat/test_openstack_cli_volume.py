"""The real python-openstackclient against the Block Storage API (issue 17): volume types, volumes
created, listed, shown, renamed, extended and deleted, snapshots, and the quotas, on a stack with a
real volume host (qemu-storage-daemon serving qcow2 files over NBD)."""

from __future__ import annotations

from tests.compat.test_openstack_cli import osc  # noqa: F401  (the client fixture)
from tests.integration.helpers import wait_until


def _status(osc, *resource: str, name: str) -> str:  # noqa: F811
    return osc(*resource, "show", name, "-c", "status", "-f", "value").strip()


def _gone(osc, listing: list[str], ident: str) -> bool:  # noqa: F811
    return ident not in {row["ID"] for row in osc(*listing, "list", parse=True)}


def test_volumes_snapshots_types_and_quotas_with_the_real_client(stack, osc):  # noqa: F811
    vtype = osc("volume", "type", "create", "--property", "tier=gold", "cli-gold", parse=True)
    assert vtype["name"] == "cli-gold"
    assert {"__DEFAULT__", "cli-gold"} <= {t["Name"] for t in
                                           osc("volume", "type", "list", parse=True)}

    volume = osc("volume", "create", "--size", "1", "--type", "cli-gold", "cli-vol", parse=True)
    assert volume["size"] == 1 and volume["type"] == "cli-gold"
    wait_until(lambda: _status(osc, "volume", name="cli-vol") == "available", timeout=60,
               what="the volume to be available")
    listed = {v["Name"]: v for v in osc("volume", "list", parse=True)}
    assert listed["cli-vol"]["Status"] == "available" and listed["cli-vol"]["Size"] == 1

    osc("volume", "set", "--name", "cli-data", "--property", "role=db", "cli-vol")
    osc("volume", "set", "--size", "2", "cli-data")
    wait_until(lambda: osc("volume", "show", "cli-data", parse=True)["size"] == 2, timeout=60,
               what="the extend")
    shown = osc("volume", "show", "cli-data", parse=True)
    assert shown["status"] == "available" and "role" in str(shown["properties"])

    snapshot = osc("volume", "snapshot", "create", "--volume", "cli-data", "cli-snap",
                   parse=True)
    wait_until(lambda: _status(osc, "volume", "snapshot", name="cli-snap") == "available",
               timeout=60, what="the snapshot to be available")
    assert snapshot["id"] in {s["ID"] for s in osc("volume", "snapshot", "list", parse=True)}

    quota = osc("quota", "show", parse=True)
    text = str(quota)
    assert "volumes" in text and "gigabytes" in text and "snapshots" in text

    osc("volume", "snapshot", "delete", "cli-snap")
    wait_until(lambda: _gone(osc, ["volume", "snapshot"], snapshot["id"]), timeout=60,
               what="the snapshot to go")
    osc("volume", "delete", "cli-data")
    wait_until(lambda: _gone(osc, ["volume"], volume["id"]), timeout=60,
               what="the volume to go")
    osc("volume", "type", "delete", "cli-gold")
    assert "cli-gold" not in {t["Name"] for t in osc("volume", "type", "list", parse=True)}


def test_server_add_and_remove_volume_and_boot_from_volume_with_the_real_client(stack, osc):  # noqa: F811
    from tests.stack import small_qcow2

    small_qcow2(osc.workdir / "bfv.qcow2")
    osc("image", "create", "--file", "bfv.qcow2", "--disk-format", "qcow2",
        "--container-format", "bare", "cli-bfv-image")
    osc("server", "create", "--image", "cli-bfv-image", "--flavor", "m1.tiny", "--nic", "none",
        "--wait", "cli-host-vm")
    osc("volume", "create", "--size", "1", "cli-attach")
    wait_until(lambda: _status(osc, "volume", name="cli-attach") == "available", timeout=60,
               what="the volume to be available")

    osc("server", "add", "volume", "cli-host-vm", "cli-attach")
    wait_until(lambda: _status(osc, "volume", name="cli-attach") == "in-use", timeout=60,
               what="the volume to be in use")
    listed = osc("server", "volume", "list", "cli-host-vm", parse=True)
    assert [row["Device"] for row in listed] == ["/dev/vdb"]
    attached = osc("volume", "show", "cli-attach", parse=True)["attachments"]
    assert "cli-host-vm" in str(attached) or osc("server", "show", "cli-host-vm", parse=True)[
        "id"] in str(attached)

    osc("server", "remove", "volume", "cli-host-vm", "cli-attach")
    wait_until(lambda: _status(osc, "volume", name="cli-attach") == "available", timeout=60,
               what="the volume to be available again")
    assert osc("server", "volume", "list", "cli-host-vm", parse=True) == []

    server = osc("server", "create", "--image", "cli-bfv-image", "--flavor", "m1.tiny",
                 "--boot-from-volume", "1", "--nic", "none", "--wait", "cli-bfv-vm", parse=True)
    assert server["status"] == "ACTIVE"
    volumes = osc("server", "volume", "list", "cli-bfv-vm", parse=True)
    assert [row["Device"] for row in volumes] == ["/dev/vda"]
    boot_volume = volumes[0]["Volume ID"]
    assert osc("volume", "show", boot_volume, parse=True)["bootable"] in (True, "true")

    osc("server", "delete", "--wait", "cli-bfv-vm")
    # --boot-from-volume keeps the volume (delete_on_termination false): available again.
    wait_until(lambda: _status(osc, "volume", name=boot_volume) == "available", timeout=60,
               what="the boot volume to be let go")
    osc("server", "delete", "--wait", "cli-host-vm")
    osc("volume", "delete", "cli-attach", boot_volume)
    osc("image", "delete", "cli-bfv-image")
