"""The image-properties filter: containers only on container hosts, VM disks only on qemu hosts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cloud.compute.models import ComputeNode, Instance, InstanceFault
from cloud.images.models import Image
from cloud.scheduler.filters import image_properties as ip
from cloud.scheduler.filters import run_filters
from cloud.scheduler.filters.image_properties import ImagePropertiesFilter
from cloud.scheduler.host_state import HostState, RequestSpec, load_host_states, request_spec_for
from cloud.scheduler.manager import schedule_instance
from tests.factories import make_instance, make_node

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
QEMU_HOST = HostState(host="compute-1", node="compute-1.local", node_id=1, vcpus=4,
                      memory_mb=4096, local_gb=40, read_at=NOW, hypervisor_type="QEMU")
LXC_HOST = replace(QEMU_HOST, host="lxc-1", node="lxc-1.local", node_id=2,
                   hypervisor_type="LXC")
SPEC = RequestSpec(instance_uuid="i-1", vcpus=1, memory_mb=512, root_gb=1, image_ref="img",
                   image_properties={})


def wanting(hv_type: str | None) -> RequestSpec:
    return replace(SPEC, image_properties={} if hv_type is None else {"hypervisor_type": hv_type})


@pytest.mark.parametrize(("wanted", "qemu_ok", "lxc_ok"), [
    (None, True, False),
    ("qemu", True, False),
    ("kvm", True, False),
    ("QEMU", True, False),
    ("lxc", False, True),
    ("LXC", False, True),
    ("xen", False, False),
])
def test_a_host_passes_only_images_of_its_kind(wanted, qemu_ok, lxc_ok):
    f = ImagePropertiesFilter()
    assert f.host_passes(QEMU_HOST, wanting(wanted)) is qemu_ok
    assert f.host_passes(LXC_HOST, wanting(wanted)) is lxc_ok


def test_fake_and_test_driver_hosts_count_as_vm_hosts():
    fake = replace(QEMU_HOST, hypervisor_type="FAKE")
    assert ImagePropertiesFilter().host_passes(fake, wanting(None))
    assert not ImagePropertiesFilter().host_passes(fake, wanting("lxc"))


def test_a_volume_boot_is_a_vm():
    spec = replace(SPEC, image_ref="", image_properties=None)
    assert ImagePropertiesFilter().host_passes(QEMU_HOST, spec)
    assert not ImagePropertiesFilter().host_passes(LXC_HOST, spec)
    assert (ImagePropertiesFilter().reason(LXC_HOST, spec)
            == "Image: volume boot wants hypervisor_type=qemu; host runs lxc")


def test_the_reason_names_what_the_image_wants_and_what_the_host_runs():
    f = ImagePropertiesFilter()
    assert f.reason(QEMU_HOST, wanting("lxc")) == (
        "Image: image wants hypervisor_type=lxc; host runs qemu")
    result = run_filters([f], [QEMU_HOST, LXC_HOST], wanting("lxc"))
    assert [h.host for h in result.passed] == ["lxc-1"]
    assert "ImagePropertiesFilter removed 1 host (compute-1)." in result.describe()


@pytest.fixture
def fresh_lookups():
    ip.forget()
    yield
    ip.forget()


def _image(**props) -> Image:
    return Image.objects.create(name="img", status="active", disk_format="raw",
                                container_format="bare", properties=props)


@pytest.mark.django_db
def test_types_are_read_from_the_nodes_and_the_image_when_not_given(fresh_lookups):
    make_node("compute-1")
    ComputeNode.objects.filter(host="compute-1").update(hypervisor_type="QEMU")
    make_node("lxc-1")
    ComputeNode.objects.filter(host="lxc-1").update(hypervisor_type="LXC")
    hosts = load_host_states()
    ct = make_instance("ct", image_ref=str(_image(hypervisor_type="lxc").id))
    vm = make_instance("vm", image_ref=str(_image().id))
    f = ImagePropertiesFilter()
    assert [h.host for h in run_filters([f], hosts, request_spec_for(ct)).passed] == ["lxc-1"]
    assert [h.host for h in run_filters([f], hosts, request_spec_for(vm)).passed] == [
        "compute-1"]


@pytest.mark.django_db
def test_a_container_boot_is_placed_on_the_container_host_or_fails_saying_why(fresh_lookups,
                                                                              settings):
    settings.KUMO_SCHEDULER_FILTERS = [
        *settings.KUMO_SCHEDULER_FILTERS,
        "cloud.scheduler.filters.image_properties.ImagePropertiesFilter"]
    make_node("compute-1", memory_mb=8192)  # the roomier host, which the weighers prefer
    make_node("lxc-1")
    ComputeNode.objects.filter(host="lxc-1").update(hypervisor_type="LXC")
    ct = make_instance("ct", image_ref=str(_image(hypervisor_type="lxc").id))
    schedule_instance(str(ct.pk), "req-1")
    assert Instance.objects.get(pk=ct.pk).host == "lxc-1"

    ip.forget()
    ComputeNode.objects.filter(host="lxc-1").update(hypervisor_type="QEMU")
    ct2 = make_instance("ct2", image_ref=str(_image(hypervisor_type="lxc").id))
    schedule_instance(str(ct2.pk), "req-2")
    ct2.refresh_from_db()
    assert ct2.host is None
    assert ct2.vm_state == "error"
    fault = InstanceFault.objects.get(instance=ct2)
    assert "ImagePropertiesFilter removed 2 of 2 hosts" in fault.message
    assert ("lxc-1: Image: image wants hypervisor_type=lxc; host runs qemu"
            in fault.details)
