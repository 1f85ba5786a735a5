"""The image-properties filter: containers only on container hosts, VM disks only on qemu hosts, an
image's CPU architecture on hosts of it; on by default, and at no query of its own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cloud.compute import states
from cloud.compute.models import ComputeNode, Instance, InstanceFault, Service
from cloud.images.models import Image
from cloud.scheduler import manager, prefilter
from cloud.scheduler.explain import explain
from cloud.scheduler.filters import run_filters
from cloud.scheduler.filters.image_properties import ImagePropertiesFilter
from cloud.scheduler.host_state import (
    HostState,
    RequestSpec,
    load_host_states,
    request_spec_for,
)
from cloud.scheduler.loader import load_filters, load_weighers
from cloud.scheduler.manager import schedule_instance
from tests.factories import make_instance, make_node

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
QEMU_HOST = HostState(host="compute-1", node="compute-1.local", node_id=1, vcpus=4,
                      memory_mb=4096, local_gb=40, read_at=NOW, hypervisor_type="QEMU",
                      cpu_arch="x86_64")
LXC_HOST = replace(QEMU_HOST, host="lxc-1", node="lxc-1.local", node_id=2,
                   hypervisor_type="LXC")
# A host whose agent has not said what it runs (nor its CPU): a virtual machine host, as the
# node row's default (QEMU) says.
UNREPORTED_HOST = replace(QEMU_HOST, host="new-1", node="new-1.local", node_id=3,
                          hypervisor_type=None, cpu_arch=None)
SPEC = RequestSpec(instance_uuid="i-1", vcpus=1, memory_mb=512, root_gb=1, image_ref="img",
                   image_properties={})


def wanting(hv_type: str | None = None, **props: str) -> RequestSpec:
    asked = dict(props) if hv_type is None else {"hypervisor_type": hv_type, **props}
    return replace(SPEC, image_properties=asked)


def passing(spec: RequestSpec, hosts: list[HostState] | None = None) -> list[str]:
    hosts = [QEMU_HOST, LXC_HOST, UNREPORTED_HOST] if hosts is None else hosts
    return [h.host for h in run_filters([ImagePropertiesFilter()], hosts, spec).passed]


@pytest.mark.parametrize(("spec", "passed"), [
    (wanting(), ["compute-1", "new-1"]),
    (replace(SPEC, image_properties=None), ["compute-1", "new-1"]),
    (wanting("qemu"), ["compute-1", "new-1"]),
    (wanting("kvm"), ["compute-1", "new-1"]),
    (wanting("QEMU"), ["compute-1", "new-1"]),
    (wanting("lxc"), ["lxc-1"]),
    (wanting("LXC"), ["lxc-1"]),
    (wanting("xen"), []),
    # Nova's names: img_hv_type (hypervisor_type is its legacy name), hw_vm_mode (vm_mode)
    (wanting(img_hv_type="lxc"), ["lxc-1"]),
    (wanting(hw_vm_mode="exe"), ["lxc-1"]),
    (wanting(vm_mode="hvm"), ["compute-1", "new-1"]),
    (wanting("lxc", hw_vm_mode="exe"), ["lxc-1"]),
    (wanting("lxc", hw_vm_mode="hvm"), []),
    (wanting(hw_vm_mode="xen"), []),
])
def test_a_host_passes_only_images_of_its_kind(spec, passed):
    assert passing(spec) == passed


def test_requests_one_after_another_each_get_their_own_answer():
    # The filter remembers the last request's answer (by its properties); it must not leak.
    ct, vm, arm = wanting("lxc"), wanting(), wanting(hw_architecture="aarch64")
    for spec, passed in [(ct, ["lxc-1"]), (vm, ["compute-1", "new-1"]), (ct, ["lxc-1"]),
                         (arm, ["new-1"]), (replace(SPEC, image_properties=None),
                                            ["compute-1", "new-1"]), (ct, ["lxc-1"])]:
        assert passing(spec) == passed


def test_fake_and_test_driver_hosts_count_as_vm_hosts():
    fake = replace(QEMU_HOST, hypervisor_type="FAKE")
    assert passing(wanting(), [fake]) == ["compute-1"]
    assert passing(wanting("lxc"), [fake]) == []


@pytest.mark.parametrize(("arch", "passed"), [
    ("x86_64", ["compute-1", "new-1"]),
    ("AMD64", ["compute-1", "new-1"]),
    # A host that does not report its CPU is not held to the image's architecture.
    ("aarch64", ["new-1"]),
])
def test_an_image_architecture_keeps_it_on_hosts_of_that_cpu_when_they_say(arch, passed):
    assert passing(wanting(hw_architecture=arch)) == passed
    assert passing(wanting(architecture=arch)) == passed


def test_a_volume_boot_is_a_vm():
    spec = replace(SPEC, image_ref="", image_properties=None)
    assert passing(spec) == ["compute-1", "new-1"]
    assert (ImagePropertiesFilter().reason(LXC_HOST, spec)
            == "Image: volume boot wants hypervisor_type=qemu; host runs lxc")


def test_the_reason_names_what_the_image_wants_and_what_the_host_runs():
    f = ImagePropertiesFilter()
    assert f.reason(QEMU_HOST, wanting("lxc")) == (
        "Image: image wants hypervisor_type=lxc; host runs qemu")
    assert f.reason(LXC_HOST, wanting("lxc", hw_vm_mode="hvm")) == (
        "Image: image wants hypervisor_type=lxc, hw_vm_mode=hvm; host runs lxc")
    assert f.reason(QEMU_HOST, wanting(hw_architecture="aarch64")) == (
        "Image: image wants hw_architecture=aarch64; host's CPU is x86_64")
    result = run_filters([f], [QEMU_HOST, LXC_HOST], wanting("lxc"))
    assert "ImagePropertiesFilter removed 1 host (compute-1)." in result.describe()


def test_it_is_in_the_default_filter_list_and_the_dry_run_names_it():
    assert any(isinstance(f, ImagePropertiesFilter) for f in load_filters())
    now = timezone.now()
    hosts = [replace(h, last_seen_up=now, read_at=now) for h in (QEMU_HOST, LXC_HOST)]

    answer = explain(wanting("lxc"), hosts, load_filters(), load_weighers())

    assert [h.host for h in answer.passed] == ["lxc-1"]
    removed = next(h for h in answer.hosts if h.host == "compute-1")
    assert removed.removed_by == "ImagePropertiesFilter"
    assert removed.reason == "Image: image wants hypervisor_type=lxc; host runs qemu"
    assert ("ImagePropertiesFilter", 1) in answer.filters


# With the database: what the filter reads comes with the rows and the request spec.

def _image(**props: str) -> Image:
    return Image.objects.create(name="img", status="active", disk_format="raw",
                                container_format="bare", properties=props)


def _kind(host: str, hv_type: str, arch: str | None = "x86_64") -> None:
    ComputeNode.objects.filter(host=host).update(
        hypervisor_type=hv_type, cpu_info={"arch": arch} if arch else {})


@pytest.fixture
def both_kinds(db):
    make_node("compute-1", memory_mb=8192)  # the roomiest, which the weighers prefer
    _kind("compute-1", "QEMU")
    make_node("lxc-1")
    _kind("lxc-1", "LXC")
    make_node("new-1")
    _kind("new-1", "", arch=None)


@pytest.mark.django_db
def test_hosts_kind_and_cpu_come_with_their_rows(both_kinds):
    every = {h.host: (h.hypervisor_type, h.cpu_arch) for h in load_host_states()}
    arm = replace(SPEC, image_properties={"hw_architecture": "aarch64"})
    listed = {h.host: (h.hypervisor_type, h.cpu_arch) for h in prefilter.load_candidates(
        [], load_weighers(), arm, timezone.now())}
    assert every == listed == {"compute-1": ("QEMU", "x86_64"), "lxc-1": ("LXC", "x86_64"),
                               "new-1": (None, None)}
    # The shortlist takes the architecture out of cpu_info only for an image that names one.
    plain = prefilter.load_candidates([], load_weighers(), SPEC, timezone.now())
    assert {h.host: (h.hypervisor_type, h.cpu_arch) for h in plain} == {
        "compute-1": ("QEMU", None), "lxc-1": ("LXC", None), "new-1": (None, None)}


@pytest.mark.django_db
def test_the_filter_asks_the_database_nothing(both_kinds):
    hosts = load_host_states()
    with CaptureQueriesContext(connection) as queries:
        assert passing(wanting("lxc"), hosts) == ["lxc-1"]
        assert passing(wanting(hw_architecture="aarch64"), hosts) == ["new-1"]
    assert queries.captured_queries == []


@pytest.mark.django_db
@pytest.mark.parametrize(("props", "shortlist"), [
    ({}, ["compute-1", "new-1"]),
    ({"hypervisor_type": "lxc"}, ["lxc-1"]),
    ({"hw_vm_mode": "exe"}, ["lxc-1"]),
    ({"hypervisor_type": "xen"}, []),
    # The architecture is left to the filter in Python (a looser condition in SQL).
    ({"hw_architecture": "aarch64"}, ["compute-1", "new-1"]),
])
def test_the_shortlist_query_keeps_only_hosts_of_the_kind_asked_for(both_kinds, props,
                                                                   shortlist):
    spec = replace(SPEC, vcpus=1, memory_mb=512, image_properties=props)
    found = prefilter.load_candidates(load_filters(), load_weighers(), spec, timezone.now())
    assert sorted(h.host for h in found) == shortlist
    # never a host the filter would keep
    every = run_filters([ImagePropertiesFilter()], load_host_states(), spec).passed
    assert {h.host for h in every} <= set(shortlist)


def _image_reads(sql: list[str]) -> list[str]:
    return [s for s in sql if s.startswith('SELECT "images_image"."properties"')]


@pytest.mark.django_db
def test_the_request_spec_carries_the_image_properties():
    ct = make_instance("ct", image_ref=str(_image(hypervisor_type="lxc").id))
    with CaptureQueriesContext(connection) as queries:
        spec = request_spec_for(ct)
    assert spec.image_properties == {"hypervisor_type": "lxc"}
    assert len(_image_reads([q["sql"] for q in queries.captured_queries])) == 1  # by the image's key
    assert request_spec_for(make_instance("vol", image_ref="")).image_properties == {}
    gone = make_instance("gone", image_ref="6f1b43a0-0000-4000-8000-00000000c7c7")
    assert request_spec_for(gone).image_properties == {}

    # An instance read by the scheduler comes with its image (a join): no query for it, whether
    # the image is there or gone.
    image = _image(hypervisor_type="lxc", hw_vm_mode="exe")
    joined = manager._read_instance(str(make_instance("joined", image_ref=str(image.id)).pk))
    joined_gone = manager._read_instance(str(gone.pk))
    with CaptureQueriesContext(connection) as queries:
        spec = request_spec_for(joined)
        spec_gone = request_spec_for(joined_gone)
    assert spec.image_properties == {"hypervisor_type": "lxc", "hw_vm_mode": "exe"}
    assert spec_gone.image_properties == {}
    assert [q["sql"] for q in queries.captured_queries if "images_image" in q["sql"]] == []


def _decide(instance: Instance) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        schedule_instance(str(instance.pk), "req-1")
    return [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.mark.django_db
def test_the_filter_adds_no_query_to_a_decision(sent, both_kinds, settings):
    image = str(_image().id)
    with_it = _decide(make_instance("vm-1", image_ref=image))
    settings.KUMO_SCHEDULER_FILTERS = [
        f for f in settings.KUMO_SCHEDULER_FILTERS if not f.endswith("ImagePropertiesFilter")]
    without = _decide(make_instance("vm-2", image_ref=image))

    assert len(with_it) == len(without)
    # The hosts once (the shortlist); the image (its properties, and its figures for the spawn
    # request) with the instance's row, which the scheduler's read of it joins
    # (manager._READ_INSTANCE): no query of the image's own.
    assert len([s for s in with_it if "FROM compute_computenode n" in s]) == 1
    assert [s for s in with_it if 'FROM "images_image"' in s] == []
    # A boot from no image (as in tests/unit/scheduler/test_query_counts.py's guards, which run
    # with the filter too) reads none.
    assert not [s for s in _decide(make_instance("vol", image_ref="")) if 'FROM "images_image"' in s]


@pytest.mark.django_db
def test_a_container_boot_is_placed_on_the_container_host_or_fails_saying_why(sent, both_kinds):
    ct = make_instance("ct", image_ref=str(_image(hypervisor_type="lxc").id))
    schedule_instance(str(ct.pk), "req-1")
    assert Instance.objects.get(pk=ct.pk).host == "lxc-1"

    _kind("lxc-1", "QEMU")
    ct2 = make_instance("ct2", image_ref=str(_image(hypervisor_type="lxc").id))
    schedule_instance(str(ct2.pk), "req-2")
    ct2.refresh_from_db()
    assert (ct2.host, ct2.vm_state) == (None, states.ERROR)
    fault = InstanceFault.objects.get(instance=ct2)
    assert "ImagePropertiesFilter removed 3 of 3 hosts" in fault.message
    assert "lxc-1: Image: image wants hypervisor_type=lxc; host runs qemu" in fault.details


@pytest.mark.django_db
def test_a_vm_image_with_its_host_disabled_fails_naming_the_filter(sent, both_kinds):
    # As tests/e2e/test_lxc.py's test_an_image_never_lands_on_the_other_kind_of_host: the
    # shortlist is empty (the VM hosts are disabled, the container host is the other kind), and
    # the fault still says which filter removed the container host.
    ComputeNode.objects.exclude(host="lxc-1").update(hypervisor_type="QEMU")
    Service.objects.exclude(host="lxc-1").update(disabled=True)
    vm = make_instance("vm", image_ref=str(_image().id))
    schedule_instance(str(vm.pk), "req-1")
    vm.refresh_from_db()
    assert vm.vm_state == states.ERROR
    message = InstanceFault.objects.get(instance=vm).message
    assert "ComputeEnabledFilter removed 2 of 3 hosts" in message
    assert "ImagePropertiesFilter removed 1 of 3 hosts" in message


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="batches are PostgreSQL's")
def test_container_boots_decided_together_all_go_to_container_hosts(sent, both_kinds):
    make_node("lxc-2")
    _kind("lxc-2", "LXC")
    image = str(_image(hypervisor_type="lxc").id)
    boots = [make_instance(f"ct-{i}", memory_mb=512, image_ref=image) for i in range(6)]

    assert schedule_instance(str(boots[0].pk), "req-1") == 6

    placed = Instance.objects.filter(pk__in=[b.pk for b in boots]).values_list("host", flat=True)
    assert set(placed) <= {"lxc-1", "lxc-2"}


@pytest.mark.django_db
def test_a_host_reporting_another_cpu_is_kept_out_for_an_image_of_one(sent, both_kinds):
    ComputeNode.objects.filter(host="compute-1").update(cpu_info={"arch": "aarch64"})
    vm = make_instance("vm", image_ref=str(_image(hw_architecture="x86_64").id))
    schedule_instance(str(vm.pk), "req-1")
    # compute-1 is the roomier; new-1 does not say its CPU, so it is not held to one.
    assert Instance.objects.get(pk=vm.pk).host == "new-1"
