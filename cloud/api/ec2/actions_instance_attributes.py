"""An instance's attributes, its console and the instance types: DescribeInstanceAttribute,
ModifyInstanceAttribute, GetConsoleOutput, DescribeInstanceTypes.

disableApiTermination is Nova's lock: a locked server refuses a member's delete (here and from
the OpenStack API alike), and so TerminateInstances answers OperationNotPermitted. A lock also
refuses a member's other changes (stop, start, reboot), which EC2's flag does not: the price of
one protection both APIs honour.

instanceType of a stopped instance is Nova's resize to the flavor of that name (compute:servers:
resize): the host resizes the stopped guest and the server waits in VERIFY_RESIZE, which EC2
shows as stopped; the next StartInstances confirms the resize, then starts it (EC2 has no
confirmation step). userData is refused: Nova changes it only by a rebuild.
"""

from __future__ import annotations

import base64
from typing import Any

from django.utils import timezone

from cloud import errors
from cloud.compute import flavors, operations, states
from cloud.compute.models import Flavor, Instance
from cloud.identity import policy

from . import instance_bodies as ib
from . import listing
from .actions_instances import dry_run, usable_flavor
from .errors import Ec2Error, invalid, missing, unauthorized
from .registry import Call, action

# DescribeInstanceAttribute's names, and the key of the instance body each is read from.
_FROM_BODY = {
    "instanceType": "instanceType", "rootDeviceName": "rootDeviceName",
    "blockDeviceMapping": "blockDeviceMapping", "groupSet": "groupSet",
    "sourceDestCheck": "sourceDestCheck", "ebsOptimized": "ebsOptimized",
    "enaSupport": "enaSupport", "productCodes": "productCodes",
}
_VALUE = {"instanceType", "rootDeviceName"}  # wrapped as {"value": …}
_BOOL = {"sourceDestCheck", "ebsOptimized", "enaSupport"}
ATTRIBUTES = (*_FROM_BODY, "userData", "disableApiTermination", "disableApiStop", "kernel",
              "ramdisk", "instanceInitiatedShutdownBehavior", "sriovNetSupport")


@action("DescribeInstanceAttribute", "compute:servers:show")
def describe_instance_attribute(call: Call) -> dict[str, Any]:
    name = call.params.required("Attribute")
    if name not in ATTRIBUTES:
        raise invalid("Attribute", name, f"Use one of {', '.join(ATTRIBUTES)}.")
    row = ib.find(call.params.required("InstanceId"), ib.visible(call.ctx))
    answer: dict[str, Any] = {"instanceId": ib.resources.id_of(ib.resources.INSTANCE, row.pk)}
    if name in _FROM_BODY:
        value = ib.describe_rows([row])[0].get(_FROM_BODY[name])
        if name in _VALUE or name in _BOOL:
            value = {"value": value}
        answer[name] = value
    elif name == "userData":
        # EC2 gives the owner's account its instance's user data, base64 as it was sent.
        answer["userData"] = {"value": row.user_data} if row.user_data else {}
    elif name == "disableApiTermination":
        answer["disableApiTermination"] = {"value": row.locked}
    elif name == "disableApiStop":
        answer["disableApiStop"] = {"value": False}
    elif name == "instanceInitiatedShutdownBehavior":
        answer[name] = {"value": "stop"}
    else:
        answer[name] = {}
    return answer


def _single_change(call: Call) -> tuple[str, str]:
    """The one attribute a ModifyInstanceAttribute changes and its new value, in either form the
    clients send (Attribute + Value, or <Attribute>.Value)."""
    params = call.params
    given = []
    if params.get("Attribute"):
        given.append((params.required("Attribute"), params.get("Value") or ""))
    for name in ("InstanceType", "UserData", "DisableApiTermination", "SourceDestCheck",
                 "DisableApiStop", "EbsOptimized", "EnaSupport", "Kernel", "Ramdisk",
                 "InstanceInitiatedShutdownBehavior", "SriovNetSupport"):
        struct = params.struct(name)
        if struct is not None:
            given.append((name[0].lower() + name[1:], struct.get("Value") or ""))
    if params.strings("GroupId"):
        given.append(("groupSet", ""))
    if not given:
        raise missing("Attribute")
    if len(given) > 1:
        raise Ec2Error("InvalidParameterCombination",
                       "Modify one attribute of an instance per request.")
    return given[0]


@action("ModifyInstanceAttribute", "compute:servers:update")
def modify_instance_attribute(call: Call) -> dict[str, Any]:
    name, value = _single_change(call)
    row = ib.find(call.params.required("InstanceId"), ib.live(call.ctx))
    state = ib.state_of(row)
    if name == "disableApiTermination":
        lock = value.lower() in ("true", "1")
        operation = "lock" if lock else "unlock"
        if not policy.allowed(call.ctx, operations.REGISTRY[operation].rule or ""):
            raise unauthorized()
        dry_run(call.params)
        if lock != row.locked:
            operations.perform(call.ctx, row, operation)
        return {"return": True}
    if name in ("instanceType", "userData"):
        if state != ib.STOPPED:
            raise Ec2Error("IncorrectInstanceState",
                           f"The instance '{ib.resources.id_of(ib.resources.INSTANCE, row.pk)}' "
                           f"is not in the 'stopped' state (it is {state[1]}).")
        if name == "instanceType":
            return _resize(call, row, value)
        raise Ec2Error("UnsupportedOperation",
                       "Kumo does not change an instance's user data in place: rebuild it with "
                       "new user data (openstack server rebuild --user-data).")
    raise Ec2Error("UnsupportedOperation", f"Kumo's instances do not change {name}.")


def _resize(call: Call, row: Instance, name: str) -> dict[str, Any]:
    if not policy.allowed(call.ctx, operations.REGISTRY["resize"].rule or ""):
        raise unauthorized()
    flavor = usable_flavor(call, name)
    dry_run(call.params)
    if flavor.name == (row.flavor_snapshot or {}).get("name"):
        return {"return": True}
    if row.vm_state != states.STOPPED or row.task_state is not None:
        # Stopped as EC2 sees it, but a resize already waits for its confirmation: the next
        # StartInstances confirms it.
        raise Ec2Error("IncorrectInstanceState",
                       f"The instance '{ib.resources.id_of(ib.resources.INSTANCE, row.pk)}' "
                       "is still being resized; start it to keep the new type.")
    try:
        operations.perform(call.ctx, row, "resize", flavor_ref=flavor.flavorid)
    except errors.BadRequest as exc:
        raise invalid("InstanceType", name, exc.message) from exc
    except errors.Conflict as exc:
        row.refresh_from_db()
        if operations.REGISTRY["resize"].allows(row.vm_state, row.task_state):
            # Its state allowed the resize: no host had room for the new type.
            raise Ec2Error("InsufficientInstanceCapacity", exc.message) from exc
        raise
    return {"return": True}


@action("GetConsoleOutput", "compute:servers:console_output")
def get_console_output(call: Call) -> dict[str, Any]:
    row = ib.find(call.params.required("InstanceId"), ib.live(call.ctx))
    dry_run(call.params)
    # EC2 gives up to 64 KiB of the console (Latest: the most recent); Nova's os-getConsoleOutput
    # reads lines, so the tail is asked for and cut to the last 64 KiB.
    output = operations.perform(call.ctx, row, "console_output", length=None) or ""
    data = output.encode("utf-8", "replace")[-65536:]
    return {"instanceId": ib.resources.id_of(ib.resources.INSTANCE, row.pk),
            "timestamp": timezone.now(), "output": base64.b64encode(data).decode()}


TYPE_FILTERS: listing.Filters = {
    "instance-type": listing.path("instanceType"),
    "vcpu-info.default-vcpus": listing.path("vCpuInfo", "defaultVCpus"),
    "memory-info.size-in-mib": listing.path("memoryInfo", "sizeInMiB"),
    "instance-storage-supported": listing.path("instanceStorageSupported"),
    "instance-storage-info.total-size-in-gb": listing.path("instanceStorageInfo",
                                                           "totalSizeInGB"),
    "current-generation": listing.path("currentGeneration"),
    "processor-info.supported-architecture": listing.path("processorInfo",
                                                          "supportedArchitectures"),
    "hypervisor": listing.path("hypervisor"),
}


def describe_type(flavor: Flavor) -> dict[str, Any]:
    """A flavor as EC2's InstanceTypeInfo: its name is the instance type."""
    local = flavor.root_gb + flavor.ephemeral_gb
    return {
        "instanceType": flavor.name, "currentGeneration": True, "freeTierEligible": False,
        "supportedUsageClasses": ["on-demand"],
        "supportedRootDeviceTypes": ["ebs", "instance-store"] if local else ["ebs"],
        "supportedVirtualizationTypes": ["hvm"], "bareMetal": False, "hypervisor": "kvm",
        "processorInfo": {"supportedArchitectures": ["x86_64"]},
        "vCpuInfo": {"defaultVCpus": flavor.vcpus, "defaultCores": flavor.vcpus,
                     "defaultThreadsPerCore": 1},
        "memoryInfo": {"sizeInMiB": flavor.memory_mb},
        "instanceStorageSupported": bool(local),
        "instanceStorageInfo": {"totalSizeInGB": local, "disks": [
            {"sizeInGB": local, "count": 1, "type": "ssd"}]} if local else None,
        "ebsInfo": {"ebsOptimizedSupport": "unsupported", "encryptionSupport": "unsupported"},
        "networkInfo": {"networkPerformance": "Moderate", "maximumNetworkInterfaces": 8,
                        "ipv4AddressesPerInterface": 1, "ipv6AddressesPerInterface": 1,
                        "ipv6Supported": True, "enaSupport": "unsupported"},
        "hibernationSupported": False, "burstablePerformanceSupported": False,
        "dedicatedHostsSupported": False, "autoRecoverySupported": False,
        "supportedBootModes": ["legacy-bios"],
    }


@action("DescribeInstanceTypes", "compute:flavors:index")
def describe_instance_types(call: Call) -> dict[str, Any]:
    wanted = call.params.strings("InstanceType")
    rows = flavors.usable_by(call.ctx, Flavor.objects.filter(disabled=False)).order_by(
        "name", "flavorid")
    found = {f.name: f for f in rows}
    for name in wanted:
        if name not in found:
            raise invalid("InstanceType", name, "No instance type of that name is available.")
    items = [describe_type(f) for f in found.values() if not wanted or f.name in wanted]
    matched = listing.apply(items, call.params, TYPE_FILTERS)
    shown, token = listing.page(matched, call.params, low=5, high=100)
    return {"instanceTypeSet": shown, "nextToken": token}
