"""First-run data for a new cloud, and the credential files the OpenStack clients read.

`manage.py bootstrap` calls `bootstrap()`. Running it again creates nothing twice and never changes
a password it did not generate in that run: operators may have edited flavors or passwords since.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from cloud.compute.models import Flavor
from cloud.identity import catalog
from cloud.identity.context import RequestContext
from cloud.identity.models import Project, Role, RoleAssignment, User
from cloud.images import images as image_services
from cloud.images.models import Image
from cloud.network import networks, routers
from cloud.network.models import Network, Port, Router, Subnet

log = logging.getLogger(__name__)

ROLES = ("admin", "member", "reader")
ADMIN_NAME = "admin"
DEMO_NAME = "demo"
DOMAIN_NAME = "Default"

# (flavorid, name, vcpus, memory_mb, root_gb)
FLAVORS = (
    ("1", "m1.tiny", 1, 128, 1),
    ("2", "m1.small", 1, 512, 10),
    ("3", "m1.medium", 2, 2048, 20),
)

PRIVATE_NETWORK = "private"
PRIVATE_SUBNET = "private-subnet"
PRIVATE_CIDR = "10.0.0.0/24"
PRIVATE_GATEWAY = "10.0.0.1"
PRIVATE_POOL = {"start": "10.0.0.10", "end": "10.0.0.250"}
# The external network: a flat network on the hosts' physical network "public" (the simulated
# hosts' ext0; on real machines the interface the operator maps it to), DevStack's range.
DEMO_ROUTER = "router1"
PUBLIC_NETWORK = "public"
PUBLIC_SUBNET = "public-subnet"
PUBLIC_CIDR = os.environ.get("KUMO_PUBLIC_CIDR", "172.24.4.0/24")
PUBLIC_GATEWAY = os.environ.get("KUMO_PUBLIC_GATEWAY", "172.24.4.1")
PUBLIC_POOL = {"start": os.environ.get("KUMO_PUBLIC_POOL_START", "172.24.4.10"),
               "end": os.environ.get("KUMO_PUBLIC_POOL_END", "172.24.4.250")}

OPENRC = "openrc"
CLOUDS_YAML = "clouds.yaml"
ADMIN_CLOUD = "kumo"
DEMO_CLOUD = "kumo-demo"


@dataclass
class Account:
    """A bootstrap user. `password` is None when the user already existed and no credential file
    holds a password that still matches it (it was changed, or the files were deleted)."""

    name: str
    project: str
    password: str | None
    created: bool


@dataclass
class BootstrapResult:
    public_url: str
    admin: Account
    demo: Account
    openrc: Path
    clouds_yaml: Path
    created: list[str] = field(default_factory=list)

    @property
    def auth_url(self) -> str:
        return f"{self.public_url}/identity/v3"


def default_public_url() -> str:
    """KUMO_PUBLIC_URL if set, else the loopback address on $PORT (the port `make run` serves)."""
    configured = getattr(settings, "KUMO_PUBLIC_URL", "")
    if configured:
        return configured.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def read_saved_passwords(output_dir: Path) -> dict[str, list[str]]:
    """Candidate passwords by user name from an earlier run's openrc and clouds.yaml, if any.

    Only this module's own output format is understood; a hand-edited file that does not parse
    just yields nothing, and every password found is checked against the database before use.
    """
    found: dict[str, list[str]] = {}
    yaml_path = output_dir / CLOUDS_YAML
    if yaml_path.exists():
        username = None
        for line in yaml_path.read_text().splitlines():
            match = re.match(r"^\s+(username|password):\s*(.+?)\s*$", line)
            if not match:
                continue
            key, raw = match.groups()
            try:
                value = json.loads(raw) if raw.startswith('"') else raw
            except ValueError:
                continue
            if key == "username":
                username = value
            elif username is not None:
                found.setdefault(username, []).append(value)
                username = None
    openrc_path = output_dir / OPENRC
    if openrc_path.exists():
        env: dict[str, str] = {}
        for line in openrc_path.read_text().splitlines():
            match = re.match(r"^export (OS_USERNAME|OS_PASSWORD)=(.*)$", line)
            if match:
                try:
                    words = shlex.split(match.group(2))
                except ValueError:
                    continue
                env[match.group(1)] = words[0] if words else ""
        if "OS_USERNAME" in env and "OS_PASSWORD" in env:
            found.setdefault(env["OS_USERNAME"], []).append(env["OS_PASSWORD"])
    return found


def ensure_roles(created: list[str]) -> dict[str, Role]:
    roles = {}
    for name in ROLES:
        roles[name], new = Role.objects.get_or_create(name=name)
        if new:
            created.append(f"role {name}")
    return roles


def ensure_project(name: str, description: str, created: list[str]) -> Project:
    project, new = Project.objects.get_or_create(name=name, defaults={"description": description})
    if new:
        created.append(f"project {name}")
    return project


def ensure_user(
    name: str,
    project: Project,
    roles: list[Role],
    *,
    superuser: bool,
    saved_passwords: list[str],
    reset_password: bool,
    created: list[str],
) -> Account:
    """Create the user with a fresh random password, or keep an existing one's password.

    Missing role assignments are added either way, so a half-finished earlier run is completed.
    """
    user = User.objects.filter(name=name).first()
    if user is None:
        password = generate_password()
        manager = User.objects.create_superuser if superuser else User.objects.create_user
        user = manager(name, password, default_project=project)
        created.append(f"user {name}")
        account = Account(name, project.name, password, created=True)
    elif reset_password:
        password = generate_password()
        user.set_password(password)
        user.save(update_fields=["password"])
        account = Account(name, project.name, password, created=False)
    else:
        # The files may be stale (another database, a password changed since): trust only a match.
        known = next((p for p in saved_passwords if p and user.check_password(p)), None)
        account = Account(name, project.name, known, created=False)
    for role in roles:
        _, new = RoleAssignment.objects.get_or_create(user=user, project=project, role=role)
        if new:
            created.append(f"role {role.name} for {name} on {project.name}")
    return account


def ensure_flavors(created: list[str]) -> None:
    for flavorid, name, vcpus, memory_mb, root_gb in FLAVORS:
        # Either key taken means an operator already owns that flavor; leave it as it is.
        if Flavor.objects.filter(flavorid=flavorid).exists():
            continue
        if Flavor.objects.filter(name=name).exists():
            continue
        Flavor.objects.create(
            flavorid=flavorid, name=name, vcpus=vcpus, memory_mb=memory_mb, root_gb=root_gb
        )
        created.append(f"flavor {name}")


def ensure_private_network(project: Project, created: list[str]) -> None:
    network = Network.objects.filter(name=PRIVATE_NETWORK, shared=True).first()
    if network is None:
        network = Network.objects.create(name=PRIVATE_NETWORK, project=project, shared=True,
                                         segmentation_id=networks.next_vni())
        created.append(f"network {PRIVATE_NETWORK}")
    if not network.subnets.filter(name=PRIVATE_SUBNET).exists():
        Subnet.objects.create(
            network=network,
            name=PRIVATE_SUBNET,
            project=project,
            cidr=PRIVATE_CIDR,
            ip_version=4,
            gateway_ip=PRIVATE_GATEWAY,
            allocation_pools=[dict(PRIVATE_POOL)],
        )
        created.append(f"subnet {PRIVATE_SUBNET}")


def ensure_public_network(project: Project, created: list[str]) -> Network:
    network = Network.objects.filter(name=PUBLIC_NETWORK, external=True).first()
    if network is None:
        network = Network.objects.create(
            name=PUBLIC_NETWORK, project=project, external=True, network_type="flat",
            physical_network=PUBLIC_NETWORK, mtu=1500)
        created.append(f"network {PUBLIC_NETWORK}")
    if not network.subnets.filter(name=PUBLIC_SUBNET).exists():
        Subnet.objects.create(
            network=network, name=PUBLIC_SUBNET, project=project, cidr=PUBLIC_CIDR,
            ip_version=4, gateway_ip=PUBLIC_GATEWAY, allocation_pools=[dict(PUBLIC_POOL)],
            enable_dhcp=False,  # floating IPs and router gateways only: nothing asks DHCP there
        )
        created.append(f"subnet {PUBLIC_SUBNET}")
    return network


def ensure_demo_router(admin_project: Project, demo_project: Project, public: Network,
                       created: list[str]) -> None:
    """The demo project's router `router1`: its gateway on `public` (SNAT, floating IPs), an
    interface on the shared private subnet. Made through the network API's own service
    functions, so it is what `openstack router create` would have made."""
    if Router.objects.filter(name=DEMO_ROUTER, project=demo_project).exists():
        return
    subnet = Subnet.objects.filter(name=PRIVATE_SUBNET).first()
    if subnet is None or Port.objects.filter(
            network=subnet.network, device_owner="network:router_interface").exists():
        return  # an operator attached the subnet elsewhere: leave their choice alone
    admin = User.objects.get(name=ADMIN_NAME)
    ctx = RequestContext(user_id=str(admin.id), user_name=admin.name,
                         project_id=str(admin_project.id), project_name=admin_project.name,
                         roles=("admin", "member", "reader"))
    router = routers.create_router(ctx, {
        "name": DEMO_ROUTER, "project_id": str(demo_project.id),
        "external_gateway_info": {"network_id": str(public.id)}})
    routers.add_interface(ctx, str(router.id), {"subnet_id": str(subnet.id)})
    created.append(f"router {DEMO_ROUTER}")


def _write_private(path: Path, text: str) -> None:
    """Write through a new 0600 file and rename it over the old one, so the secret is never
    readable by others, not even for a moment, and a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)  # in case the umask took bits away; it never adds any
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def render_openrc(auth_url: str, account: Account, region: str) -> str:
    lines = [
        "# Kumo credentials for the OpenStack clients, written by `manage.py bootstrap`.",
        "# Use with: source openrc; openstack server list",
        f"export OS_AUTH_URL={shlex.quote(auth_url)}",
        f"export OS_USERNAME={shlex.quote(account.name)}",
    ]
    if account.password is not None:
        lines.append(f"export OS_PASSWORD={shlex.quote(account.password)}")
    else:
        lines.append(
            f"# OS_PASSWORD unknown: user {account.name} existed with a password no longer on file;"
            " run `manage.py bootstrap --reset-passwords` to set a new one."
        )
    lines += [
        f"export OS_PROJECT_NAME={shlex.quote(account.project)}",
        f"export OS_USER_DOMAIN_NAME={DOMAIN_NAME}",
        f"export OS_PROJECT_DOMAIN_NAME={DOMAIN_NAME}",
        "export OS_IDENTITY_API_VERSION=3",
        f"export OS_REGION_NAME={shlex.quote(region)}",
        "export OS_INTERFACE=public",
    ]
    return "\n".join(lines) + "\n"


def render_clouds_yaml(auth_url: str, clouds: dict[str, Account], region: str) -> str:
    # JSON strings are valid YAML double-quoted scalars, so no YAML library is needed to write it.
    q = json.dumps
    lines = [
        "# Kumo clouds for the OpenStack clients, written by `manage.py bootstrap`.",
        "# Use with: openstack --os-cloud kumo server list   (or OS_CLOUD=kumo-demo)",
        "clouds:",
    ]
    for cloud, account in clouds.items():
        lines += [
            f"  {cloud}:",
            "    auth:",
            f"      auth_url: {q(auth_url)}",
            f"      username: {q(account.name)}",
        ]
        if account.password is not None:
            lines.append(f"      password: {q(account.password)}")
        lines += [
            f"      project_name: {q(account.project)}",
            f"      user_domain_name: {q(DOMAIN_NAME)}",
            f"      project_domain_name: {q(DOMAIN_NAME)}",
            f"    region_name: {q(region)}",
            '    interface: "public"',
            "    identity_api_version: 3",
        ]
    return "\n".join(lines) + "\n"


def write_credentials(
    output_dir: Path, auth_url: str, admin: Account, demo: Account
) -> tuple[Path, Path]:
    region = getattr(settings, "KUMO_REGION", "RegionOne")
    output_dir.mkdir(parents=True, exist_ok=True)
    openrc = output_dir / OPENRC
    clouds_yaml = output_dir / CLOUDS_YAML
    _write_private(openrc, render_openrc(auth_url, admin, region))
    _write_private(
        clouds_yaml, render_clouds_yaml(auth_url, {ADMIN_CLOUD: admin, DEMO_CLOUD: demo}, region)
    )
    return openrc, clouds_yaml


# The tiny container (scripts/build_ct_image.sh): a gzip'd tar of a root filesystem for libvirt's
# LXC driver, which the image service stores without looking inside (container_format compressed)
# and the scheduler places on container hosts only (hypervisor_type lxc).
CONTAINER_IMAGE = {"disk_format": "raw", "container_format": "compressed",
                   "hypervisor_type": "lxc", "min_ram": 16}


def ensure_image(path: Path, name: str, created: list[str], **fields: Any) -> None:
    """Register a guest image file as a public image `name`, through the image service's own upload
    path (so it is inspected and checksummed like any upload), unless an active one exists.
    `fields` replace or add to the tiny VM's (qcow2, bare, min_ram 96)."""
    if Image.objects.filter(name=name, status="active").exists() or not path.exists():
        return
    admin = User.objects.get(name=ADMIN_NAME)
    project = Project.objects.get(name=ADMIN_NAME)
    ctx = RequestContext(user_id=admin.id, user_name=admin.name, project_id=project.id,
                         project_name=project.name, roles=("admin", "member", "reader"))
    Image.objects.filter(name=name).exclude(status="active").delete()
    image = image_services.create_image(ctx, {
        "name": name, "disk_format": "qcow2", "container_format": "bare", "visibility": "public",
        "min_ram": 96, **fields})
    with path.open("rb") as data:
        chunks = iter(lambda: data.read(1 << 20), b"")
        image_services.upload_image(ctx, image.id, chunks, path.stat().st_size)
    created.append(f"image {name}")


def bootstrap(
    output_dir: Path | None = None,
    public_url: str | None = None,
    *,
    reset_passwords: bool = False,
    image: Path | None = None,
    ct_image: Path | None = None,
) -> BootstrapResult:
    """Create what is missing of the standard roles, projects, users, flavors, network and service
    catalog (only when there is no service at all: an operator's edits stay), then
    (re)write openrc and clouds.yaml in `output_dir` (default: the repository root)."""
    output_dir = Path(output_dir) if output_dir is not None else Path(settings.BASE_DIR)
    public_url = (public_url or default_public_url()).rstrip("/")
    saved = read_saved_passwords(output_dir)
    created: list[str] = []

    with transaction.atomic():
        roles = ensure_roles(created)
        admin_project = ensure_project(ADMIN_NAME, "Bootstrap project for administrators", created)
        demo_project = ensure_project(DEMO_NAME, "Demo project for ordinary users", created)
        admin = ensure_user(
            ADMIN_NAME,
            admin_project,
            [roles["admin"], roles["member"], roles["reader"]],
            superuser=True,
            saved_passwords=saved.get(ADMIN_NAME, []),
            reset_password=reset_passwords,
            created=created,
        )
        demo = ensure_user(
            DEMO_NAME,
            demo_project,
            [roles["member"], roles["reader"]],
            superuser=False,
            saved_passwords=saved.get(DEMO_NAME, []),
            reset_password=reset_passwords,
            created=created,
        )
        ensure_flavors(created)
        ensure_private_network(admin_project, created)
        public = ensure_public_network(admin_project, created)
        ensure_demo_router(admin_project, demo_project, public, created)
        # The region, services and endpoints the token's catalog is built from.
        created += catalog.ensure_default_catalog()
        created += catalog.ensure_added_services()
    if image is not None:
        ensure_image(Path(image), "kumo-tiny", created)
    if ct_image is not None:
        ensure_image(Path(ct_image), "kumo-tiny-ct", created, **CONTAINER_IMAGE)

    auth_url = f"{public_url}/identity/v3"
    openrc, clouds_yaml = write_credentials(output_dir, auth_url, admin, demo)
    for account in (admin, demo):
        if account.password is None:
            log.warning(
                "user %s already existed and no credential file holds its current password;"
                " run `manage.py bootstrap --reset-passwords` to generate a new one",
                account.name,
            )
    return BootstrapResult(
        public_url=public_url,
        admin=admin,
        demo=demo,
        openrc=openrc,
        clouds_yaml=clouds_yaml,
        created=created,
    )
