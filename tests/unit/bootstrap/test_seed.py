"""manage.py bootstrap: what it creates, that a second run changes nothing, and the secret files."""

import io
import stat
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from cloud.bootstrap.seed import bootstrap
from cloud.compute.models import Flavor
from cloud.identity.models import Project, Role, RoleAssignment, User
from cloud.network.models import Network, Subnet


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    # The production hasher costs a second per password; these tests hash a dozen.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.KUMO_PUBLIC_URL = ""


def counts() -> dict[str, int]:
    models = (Role, Project, User, RoleAssignment, Flavor, Network, Subnet)
    return {m.__name__: m.objects.count() for m in models}


def sourced(openrc: Path, variable: str) -> str:
    out = subprocess.run(
        ["bash", "-c", f'source "$1" && printf %s "${variable}"', "_", str(openrc)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


@pytest.mark.django_db
def test_first_run_creates_the_cloud(tmp_path):
    result = bootstrap(tmp_path, "http://cloud.example:9000")

    assert set(Role.objects.values_list("name", flat=True)) == {"admin", "member", "reader"}
    admin = User.objects.get(name="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(result.admin.password)
    assert set(
        RoleAssignment.objects.filter(user=admin, project__name="admin").values_list(
            "role__name", flat=True
        )
    ) == {"admin", "member", "reader"}
    demo = User.objects.get(name="demo")
    assert not demo.is_superuser and not demo.is_staff
    assert demo.check_password(result.demo.password)
    assert set(
        RoleAssignment.objects.filter(user=demo, project__name="demo").values_list(
            "role__name", flat=True
        )
    ) == {"member", "reader"}

    flavors = {f.name: (f.flavorid, f.vcpus, f.memory_mb, f.root_gb) for f in Flavor.objects.all()}
    assert flavors == {
        "m1.tiny": ("1", 1, 128, 1),
        "m1.small": ("2", 1, 512, 10),
        "m1.medium": ("3", 2, 2048, 20),
    }
    network = Network.objects.get(name="private")
    assert network.shared and network.project.name == "admin"
    subnet = network.subnets.get()
    assert (subnet.name, subnet.cidr, subnet.ip_version, subnet.gateway_ip) == (
        "private-subnet",
        "10.0.0.0/24",
        4,
        "10.0.0.1",
    )
    assert subnet.allocation_pools == [{"start": "10.0.0.10", "end": "10.0.0.250"}]


@pytest.mark.django_db
def test_credential_files_are_private_and_usable(tmp_path):
    result = bootstrap(tmp_path, "http://cloud.example:9000/")

    for path in (result.openrc, result.clouds_yaml):
        assert path.parent == tmp_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sourced(result.openrc, "OS_AUTH_URL") == "http://cloud.example:9000/identity/v3"
    assert sourced(result.openrc, "OS_USERNAME") == "admin"
    assert sourced(result.openrc, "OS_PASSWORD") == result.admin.password
    assert sourced(result.openrc, "OS_PROJECT_NAME") == "admin"
    assert sourced(result.openrc, "OS_USER_DOMAIN_NAME") == "Default"
    assert sourced(result.openrc, "OS_IDENTITY_API_VERSION") == "3"
    assert sourced(result.openrc, "OS_REGION_NAME") == "RegionOne"
    assert sourced(result.openrc, "OS_INTERFACE") == "public"

    yaml = pytest.importorskip("yaml")
    clouds = yaml.safe_load(result.clouds_yaml.read_text())["clouds"]
    assert clouds["kumo"]["auth"]["username"] == "admin"
    assert clouds["kumo"]["auth"]["password"] == result.admin.password
    assert clouds["kumo"]["auth"]["auth_url"] == "http://cloud.example:9000/identity/v3"
    assert clouds["kumo-demo"]["auth"]["username"] == "demo"
    assert clouds["kumo-demo"]["auth"]["password"] == result.demo.password
    assert clouds["kumo-demo"]["auth"]["project_name"] == "demo"
    assert clouds["kumo-demo"]["region_name"] == "RegionOne"


@pytest.mark.django_db
def test_second_run_creates_nothing_and_keeps_passwords(tmp_path):
    first = bootstrap(tmp_path)
    before = counts()
    openrc_before = first.openrc.read_text()

    second = bootstrap(tmp_path)

    assert second.created == []
    assert counts() == before
    assert (second.admin.password, second.demo.password) == (
        first.admin.password,
        first.demo.password,
    )
    assert User.objects.get(name="admin").check_password(first.admin.password)
    assert second.openrc.read_text() == openrc_before


@pytest.mark.django_db
def test_passwords_are_generated_not_constant(tmp_path):
    first = bootstrap(tmp_path / "one")
    User.objects.all().delete()
    second = bootstrap(tmp_path / "two")

    assert first.admin.password != second.admin.password
    assert first.demo.password != second.demo.password
    assert first.admin.password != first.demo.password
    assert len(first.admin.password) >= 20


@pytest.mark.django_db
def test_port_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PORT", "8123")
    result = bootstrap(tmp_path)
    assert result.auth_url == "http://127.0.0.1:8123/identity/v3"
    assert "http://127.0.0.1:8123/identity/v3" in result.openrc.read_text()


@pytest.mark.django_db
def test_existing_user_keeps_password_even_without_files(tmp_path):
    first = bootstrap(tmp_path / "one")

    elsewhere = bootstrap(tmp_path / "two")

    assert elsewhere.admin.password is None
    assert "OS_PASSWORD=" not in elsewhere.openrc.read_text()
    assert User.objects.get(name="admin").check_password(first.admin.password)


@pytest.mark.django_db
def test_a_changed_password_is_not_rewritten_from_stale_files(tmp_path):
    bootstrap(tmp_path)
    admin = User.objects.get(name="admin")
    admin.set_password("changed-by-the-operator")
    admin.save()

    again = bootstrap(tmp_path)

    assert again.admin.password is None
    assert User.objects.get(name="admin").check_password("changed-by-the-operator")


@pytest.mark.django_db
def test_reset_passwords_sets_new_ones(tmp_path):
    first = bootstrap(tmp_path)
    reset = bootstrap(tmp_path, reset_passwords=True)
    assert reset.admin.password not in (None, first.admin.password)
    assert User.objects.get(name="admin").check_password(reset.admin.password)
    assert sourced(reset.openrc, "OS_PASSWORD") == reset.admin.password


@pytest.mark.django_db
def test_an_operators_flavor_is_left_alone(tmp_path):
    Flavor.objects.create(flavorid="42", name="m1.tiny", vcpus=2, memory_mb=256, root_gb=2)
    bootstrap(tmp_path)
    tiny = Flavor.objects.get(name="m1.tiny")
    assert (tiny.flavorid, tiny.memory_mb) == ("42", 256)
    assert Flavor.objects.count() == 3


@pytest.mark.django_db
def test_command_prints_paths_not_passwords(tmp_path):
    out = io.StringIO()
    call_command("bootstrap", output_dir=tmp_path, public_url="http://127.0.0.1:8000", stdout=out)
    text = out.getvalue()
    yaml = pytest.importorskip("yaml")
    clouds = yaml.safe_load((tmp_path / "clouds.yaml").read_text())["clouds"]
    passwords = [cloud["auth"]["password"] for cloud in clouds.values()]
    assert len(passwords) == 2 and all(passwords)
    assert all(p not in text for p in passwords)
    assert str(tmp_path / "openrc") in text
    assert str(tmp_path / "clouds.yaml") in text
    assert "http://127.0.0.1:8000/admin/" in text


@pytest.mark.django_db
def test_a_guest_image_file_becomes_the_public_kumo_tiny_image_once(tmp_path, settings):
    from cloud.images.models import Image

    settings.KUMO_IMAGE_DIR = tmp_path / "store"
    disk = tmp_path / "kumo-tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "32M"], check=True)
    bootstrap(tmp_path, "http://cloud.example:8000", image=disk)
    bootstrap(tmp_path, "http://cloud.example:8000", image=disk)
    (image,) = Image.objects.filter(name="kumo-tiny")
    assert (image.status, image.visibility, image.disk_format) == ("active", "public", "qcow2")
    assert image.size == disk.stat().st_size and image.virtual_size == 32 * 1024 * 1024


@pytest.mark.django_db
def test_a_container_root_filesystem_becomes_the_public_kumo_tiny_ct_image(tmp_path, settings):
    import tarfile

    from cloud.images.models import Image

    settings.KUMO_IMAGE_DIR = tmp_path / "store"
    (tmp_path / "root" / "sbin").mkdir(parents=True)
    (tmp_path / "root" / "sbin" / "init").write_text("#!/bin/sh\n")
    archive = tmp_path / "kumo-tiny-ct.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "root", arcname=".")
    bootstrap(tmp_path, "http://cloud.example:8000", ct_image=archive)
    (image,) = Image.objects.filter(name="kumo-tiny-ct")
    assert (image.status, image.visibility, image.disk_format, image.container_format) == (
        "active", "public", "raw", "compressed")
    assert image.properties["hypervisor_type"] == "lxc"
    assert image.size == archive.stat().st_size


@pytest.mark.django_db
def test_the_external_network_and_the_demo_router_are_made_once(tmp_path):
    from cloud.network.models import Port, Router

    bootstrap(tmp_path)
    public = Network.objects.get(name="public")
    assert (public.external, public.network_type, public.physical_network) == \
        (True, "flat", "public")
    assert public.subnets.get().cidr == "172.24.4.0/24"
    private = Network.objects.get(name="private")
    assert private.segmentation_id is not None  # a VXLAN segment of its own
    router = Router.objects.get(name="router1")
    assert router.project == Project.objects.get(name="demo")
    assert router.external_network == public
    legs = {p.device_owner: p.fixed_ips[0]["ip_address"]
            for p in Port.objects.filter(device_id=str(router.id))}
    assert legs["network:router_interface"] == "10.0.0.1"
    assert legs["network:router_gateway"].startswith("172.24.4.")
    before = (Router.objects.count(), Port.objects.count())
    bootstrap(tmp_path)
    assert (Router.objects.count(), Port.objects.count()) == before
