"""Dashboard forms. They check what a person can get wrong in a field (required, length, a choice
from the list); every rule about the cloud itself (quota, states, visibility) stays in the service
functions, whose errors the views attach to the form."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from django import forms

from cloud import errors
from cloud.compute import availability_zones, flavors, keypairs, quotas, server_groups
from cloud.compute.models import Flavor
from cloud.identity import policy
from cloud.identity.context import RequestContext
from cloud.images import images as image_services
from cloud.images.models import CONTAINER_FORMATS, DISK_FORMATS
from cloud.network import networks as network_services
from cloud.network import ports as port_services
from cloud.network import security_groups as group_services
from cloud.validation import name_schema, validate
from cloud.volumes.models import Volume

AUTO_NETWORK = "auto"
MAX_USER_DATA = 48 * 1024  # 64 KiB once base64-encoded, the API's limit
MAX_COUNT = 100


def check_name(value: str, label: str = "Name") -> str:
    try:
        validate(name_schema(), value)
    except errors.BadRequest:
        raise forms.ValidationError(
            f"{label} must be 1–255 characters, without leading or trailing spaces."
        ) from None
    return value


def attach(form: forms.Form, exc: errors.KumoError, field: str | None = None) -> None:
    """Show a service's refusal on the form (on a field when the caller knows which)."""
    form.add_error(field, exc.message)


# --- launch


def _flavors(ctx: RequestContext) -> list[Flavor]:
    return list(flavors.list_flavors(ctx, is_public=None, min_disk=None, min_ram=None,
                                     sort_key="memory_mb"))


def flavor_choices(ctx: RequestContext) -> list[tuple[str, str]]:
    """The flavors this user may boot, smallest first, as (id, what it gives)."""
    return [
        (f.flavorid, f"{f.name} — {f.vcpus} vCPU, {f.memory_mb} MiB RAM, {f.root_gb} GB disk")
        for f in _flavors(ctx)
    ]


@dataclass
class QuotaLine:
    label: str
    resource: str
    used: int
    limit: int  # -1: unlimited
    adding: int = 0

    @property
    def unlimited(self) -> bool:
        return self.limit < 0

    @property
    def after(self) -> int:
        return self.used + self.adding

    @property
    def left(self) -> int | None:
        return None if self.unlimited else max(0, self.limit - self.used)

    @property
    def over(self) -> bool:
        return not self.unlimited and self.after > self.limit


def quota_lines(ctx: RequestContext, flavor: Flavor | None = None, count: int = 0) -> list[QuotaLine]:
    """Instances, vCPUs and RAM: used, limit and what a launch of `count` × `flavor` adds."""
    limits, used = quotas.limits_and_usage(ctx.project_id, ctx.user_id)
    adding = {"instances": count, "cores": 0, "ram": 0}
    if flavor is not None:
        adding.update(cores=flavor.vcpus * count, ram=flavor.memory_mb * count)
    return [
        QuotaLine(label, resource, used[resource], limits[resource], adding[resource])
        for label, resource in (("Instances", "instances"), ("vCPUs", "cores"), ("RAM (MiB)", "ram"))
    ]


def launch_networks(ctx: RequestContext) -> list:
    """Networks a server of this project may be plugged into: its own and shared ones (as
    create_servers decides; an external network only when shared), or every one for an admin."""
    networks = network_services.visible_networks(ctx)
    if not ctx.is_admin:
        networks = networks.filter(project_id=ctx.project_id) | networks.filter(shared=True)
    return list(networks.distinct().order_by("name").prefetch_related("subnets"))


def _boot_volumes(ctx: RequestContext) -> list[Volume]:
    """The project's volumes a server can boot from now: available and bootable."""
    if not policy.allowed(ctx, "volume:volumes:read") or not ctx.project_id:
        return []
    return list(Volume.objects.filter(project_id=ctx.project_id, status="available",
                                      bootable=True).order_by("name"))


class LaunchForm(forms.Form):
    name = forms.CharField(max_length=255, label="Name")
    image = forms.ChoiceField(label="Image", required=False)
    # Boot from volume (Horizon's "Create New Volume" and "Volume" boot sources).
    new_volume = forms.BooleanField(label="Boot from a new volume made from the image",
                                    required=False)
    boot_volume = forms.ChoiceField(label="Or boot from an existing volume", required=False)
    volume_size = forms.IntegerField(label="Volume size (GiB)", min_value=1, max_value=1024,
                                     required=False,
                                     help_text="Empty: the flavor's disk (at least 1 GiB).")
    delete_on_termination = forms.BooleanField(label="Delete the volume with the instance",
                                               required=False)
    flavor = forms.ChoiceField(label="Flavor")
    networks = forms.MultipleChoiceField(
        label="Networks", required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked and no port: the project's network, if it has exactly one.")
    port = forms.ChoiceField(label="Existing port", required=False)
    security_groups = forms.MultipleChoiceField(
        label="Security groups", required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: the project's default group.")
    key_name = forms.ChoiceField(label="Key pair", required=False)
    availability_zone = forms.ChoiceField(label="Availability zone", required=False)
    server_group = forms.ChoiceField(label="Server group", required=False)
    user_data = forms.CharField(
        label="User data (cloud-init)", required=False, max_length=MAX_USER_DATA, strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )
    count = forms.IntegerField(label="Count", min_value=1, max_value=MAX_COUNT, initial=1)

    def __init__(self, ctx: RequestContext, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ctx = ctx
        images = image_services.visible_images(ctx).filter(status="active", os_hidden=False)
        self.fields["image"].choices = [("", "Choose an image")] + [
            (str(i.id), i.name or str(i.id)) for i in images.order_by("name")
        ]
        self.fields["boot_volume"].choices = [("", "None")] + [
            (str(v.id), f"{v.name or v.id} ({v.size} GiB)") for v in _boot_volumes(ctx)]
        self.flavor_objects = {f.flavorid: f for f in _flavors(ctx)}
        self.fields["flavor"].choices = [("", "Choose a flavor")] + [
            (f.flavorid, f"{f.name} — {f.vcpus} vCPU, {f.memory_mb} MiB RAM, {f.root_gb} GB disk")
            for f in self.flavor_objects.values()
        ]
        self.fields["networks"].choices = [
            (str(n.id), f"{n.name or n.id} ({', '.join(sn.cidr for sn in n.subnets.all())})"
             if n.subnets.all() else n.name or str(n.id))
            for n in launch_networks(ctx)
        ]
        self.fields["port"].choices = [("", "None")] + [
            (str(p.id), f"{p.name or p.id} ({', '.join(e['ip_address'] for e in p.fixed_ips)})")
            for p in port_services.list_ports(ctx, {"device_id": [""], "device_owner": [""]})
        ]
        groups = group_services.list_groups(ctx, {}) if ctx.project_id else []
        self.fields["security_groups"].choices = [(str(g.id), g.name or str(g.id)) for g in groups]
        if not self.is_bound:
            self.initial.setdefault("security_groups", [
                str(g.id) for g in groups if g.name == group_services.DEFAULT])
        self.fields["key_name"].choices = [("", "None")] + [
            (k.name, k.name) for k in keypairs.keypairs_of(ctx.user_id).order_by("name")
        ]
        self.fields["availability_zone"].choices = [("", "Any")] + [
            (z, z) for z in sorted(availability_zones.available_compute_zones())
        ]
        self.fields["server_group"].choices = [("", "None")] + [
            (str(g.uuid), f"{g.name} ({g.policy})") for g in server_groups.list_groups(ctx)
        ]

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"])

    @property
    def chosen_flavor(self) -> Flavor | None:
        return self.flavor_objects.get(self.data.get("flavor") or "")

    @property
    def chosen_count(self) -> int:
        try:
            return max(0, min(int(self.data.get("count") or 1), MAX_COUNT))
        except ValueError:
            return 1

    def quota(self) -> list[QuotaLine]:
        return quota_lines(self.ctx, self.chosen_flavor, self.chosen_count if self.is_bound else 0)

    def clean(self) -> dict:
        cleaned = super().clean()
        if not cleaned.get("image") and not cleaned.get("boot_volume"):
            self.add_error("image", "Choose an image, or a volume to boot from.")
        elif cleaned.get("new_volume") and not cleaned.get("image"):
            self.add_error("image", "A new boot volume is made from an image: choose one.")
        # A friendly early word on quota; create_servers re-checks under the project's lock.
        for line in self.quota():
            if line.over:
                self.add_error(
                    "count" if line.resource == "instances" else "flavor",
                    f"Over quota: {line.label} would be {line.after} of {line.limit} "
                    f"({line.used} in use).",
                )
        return cleaned

    def user_data_b64(self) -> str | None:
        text = self.cleaned_data.get("user_data") or ""
        return base64.b64encode(text.encode()).decode() if text else None


# --- images


_VISIBILITIES = [
    ("private", "Private (this project)"), ("shared", "Shared (with chosen projects)"),
    ("community", "Community (every project)"), ("public", "Public (admins only)"),
]
# A property name: up to 255 characters, not starting with a space or '='.
_PROPERTY_KEY = re.compile(r"^[^\s=][^=]{0,254}$")


def parse_tags(text: str) -> list[str]:
    """Comma-separated tags, trimmed, duplicates dropped, in order."""
    tags = [t.strip() for t in text.split(",") if t.strip()]
    for tag in tags:
        if len(tag) > 255:
            raise forms.ValidationError(f"Tag {tag[:20]}… is longer than 255 characters.")
    return list(dict.fromkeys(tags))


def parse_properties(text: str) -> dict[str, str]:
    """`key=value` lines → Glance's extra properties (strings)."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _PROPERTY_KEY.match(key):
            raise forms.ValidationError(f"Line {number}: write key=value (a key of at most "
                                        "255 characters).")
        found[key] = value.strip()
    return found


class ImageForm(forms.Form):
    name = forms.CharField(label="Name", max_length=255)
    disk_format = forms.ChoiceField(
        label="Disk format", choices=[(f, f) for f in DISK_FORMATS], initial="qcow2"
    )
    container_format = forms.ChoiceField(
        label="Container format", choices=[(f, f) for f in CONTAINER_FORMATS], initial="bare"
    )
    visibility = forms.ChoiceField(label="Visibility", initial="private", choices=_VISIBILITIES)
    min_disk = forms.IntegerField(label="Minimum disk (GB)", min_value=0, initial=0)
    min_ram = forms.IntegerField(label="Minimum RAM (MiB)", min_value=0, initial=0)
    tags = forms.CharField(label="Tags (comma-separated)", required=False, max_length=4096)
    properties = forms.CharField(
        label="Properties (one key=value per line)", required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono",
                                     "placeholder": "os_distro=debian\nhw_disk_bus=virtio"}))

    def clean_tags(self) -> list[str]:
        return parse_tags(self.cleaned_data.get("tags") or "")

    def clean_properties(self) -> dict[str, str]:
        return parse_properties(self.cleaned_data.get("properties") or "")

    def body(self) -> dict:
        """The image API's create body: core fields, tags, and the properties beside them."""
        data = dict(self.cleaned_data)
        properties = data.pop("properties")
        if not data["tags"]:
            data.pop("tags")
        return {**properties, **data}


class ImageEditForm(forms.Form):
    """What Glance lets an owner change once the image exists (its formats only while queued,
    which the upload page sets)."""

    name = forms.CharField(label="Name", max_length=255, required=False)
    visibility = forms.ChoiceField(label="Visibility", choices=_VISIBILITIES)
    min_disk = forms.IntegerField(label="Minimum disk (GB)", min_value=0)
    min_ram = forms.IntegerField(label="Minimum RAM (MiB)", min_value=0)
    protected = forms.BooleanField(label="Protected (cannot be deleted)", required=False)
    tags = forms.CharField(label="Tags (comma-separated)", required=False, max_length=4096)
    properties = forms.CharField(
        label="Properties (one key=value per line)", required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "mono"}))

    clean_tags = ImageForm.clean_tags
    clean_properties = ImageForm.clean_properties

    @staticmethod
    def initial_for(image) -> dict:
        return {
            "name": image.name or "", "visibility": image.visibility,
            "min_disk": image.min_disk, "min_ram": image.min_ram, "protected": image.protected,
            "tags": ", ".join(image.tags or []),
            "properties": "\n".join(f"{k}={v}" for k, v in sorted(image.properties.items())),
        }

    def patch(self, image) -> list[dict]:
        """The JSON patch (Glance's draft-10 dialect) from the image as it is to this form."""
        data = self.cleaned_data
        ops: list[dict] = []
        for key in ("name", "visibility", "min_disk", "min_ram", "protected"):
            current = getattr(image, key)
            wanted = data[key] if key != "name" else (data["name"] or None)
            if wanted != current:
                ops.append({"op": "replace", "path": f"/{key}", "value": wanted})
        if data["tags"] != list(image.tags or []):
            ops.append({"op": "replace", "path": "/tags", "value": data["tags"]})
        current_properties = dict(image.properties)
        for key in sorted(set(current_properties) - set(data["properties"])):
            ops.append({"op": "remove", "path": "/" + _escape(key)})
        for key, value in sorted(data["properties"].items()):
            if current_properties.get(key) != value:
                ops.append({"op": "add", "path": "/" + _escape(key), "value": value})
        return ops


def _escape(key: str) -> str:
    # JSON pointer (RFC 6901): ~ and / inside a name.
    return key.replace("~", "~0").replace("/", "~1")


# --- key pairs and server groups


class KeyPairCreateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=255)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        try:
            keypairs.validate_name(name)
        except errors.BadRequest as exc:
            raise forms.ValidationError(exc.message.replace("Keypair data is invalid: ", ""))
        return name


class KeyPairImportForm(KeyPairCreateForm):
    public_key = forms.CharField(
        label="Public key (OpenSSH)", widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})
    )


class ServerGroupForm(forms.Form):
    name = forms.CharField(label="Name", max_length=255)
    policy = forms.ChoiceField(label="Policy", choices=[
        (server_groups.ANTI_AFFINITY, "Anti-affinity: every member on a different host"),
        (server_groups.AFFINITY, "Affinity: all members on one host"),
        (server_groups.SOFT_ANTI_AFFINITY, "Soft anti-affinity: apart when possible"),
        (server_groups.SOFT_AFFINITY, "Soft affinity: together when possible"),
    ])

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"])


# --- admin


class ServiceForm(forms.Form):
    status = forms.ChoiceField(label="Status", choices=[("enabled", "Enabled"),
                                                        ("disabled", "Disabled")])
    disabled_reason = forms.CharField(label="Reason for disabling", required=False, max_length=255)
    forced_down = forms.BooleanField(label="Forced down", required=False)


_SPEC_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")  # the API's rule for extra spec keys


def parse_specs(text: str) -> dict[str, str]:
    """`key=value` lines (blank lines ignored) → extra specs; ValidationError naming the line."""
    specs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _SPEC_KEY.match(key) or len(value) > 255:
            raise forms.ValidationError(
                f"Line {number}: write key=value; a key is letters, digits, spaces and -_:. "
                "(at most 255), a value at most 255 characters.")
        specs[key] = value
    return specs


def format_specs(specs: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(specs.items()))


class FlavorForm(forms.Form):
    """A whole flavor. On an existing one the fields above `description` are Nova's immutable
    ones: changing any of them replaces the flavor (cloud/compute/flavor_edits.py)."""

    name = forms.CharField(label="Name", max_length=255)
    flavorid = forms.CharField(label="ID (blank: a new UUID)", required=False, max_length=255)
    vcpus = forms.IntegerField(label="vCPUs", min_value=1, max_value=1024)
    ram = forms.IntegerField(label="RAM (MiB)", min_value=1)
    disk = forms.IntegerField(label="Root disk (GB)", min_value=0, initial=1)
    ephemeral = forms.IntegerField(label="Ephemeral disk (GB)", min_value=0, initial=0,
                                   required=False)
    swap = forms.IntegerField(label="Swap (MiB)", min_value=0, initial=0, required=False)
    is_public = forms.BooleanField(label="Public (every project may use it)", required=False,
                                   initial=True)
    description = forms.CharField(label="Description", required=False, max_length=65535,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    projects = forms.MultipleChoiceField(
        label="Projects that may use it (a private flavor only)", required=False,
        widget=forms.CheckboxSelectMultiple)
    extra_specs = forms.CharField(
        label="Extra specs (one key=value per line)", required=False, strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono",
                                     "placeholder": "hw:cpu_policy=dedicated"}))

    def __init__(self, projects: list[tuple[str, str]], *args, editing: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["projects"].choices = projects
        if editing:
            self.fields["flavorid"].disabled = True
            self.fields["flavorid"].label = "ID (kept)"

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"])

    def clean_extra_specs(self) -> dict[str, str]:
        return parse_specs(self.cleaned_data.get("extra_specs") or "")

    def clean_ephemeral(self) -> int:
        return self.cleaned_data.get("ephemeral") or 0  # blank: none, as the API's default

    def clean_swap(self) -> int:
        return self.cleaned_data.get("swap") or 0

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("is_public") and cleaned.get("projects"):
            self.add_error("projects", "A public flavor is open to every project: untick "
                                       "Public to choose projects.")
        return cleaned


class AggregateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=255)
    availability_zone = forms.CharField(label="Availability zone", required=False, max_length=255)

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"])


class AggregateHostForm(forms.Form):
    host = forms.ChoiceField(label="Compute host")

    def __init__(self, hosts: list[str], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["host"].choices = [(h, h) for h in hosts]


class ProjectForm(forms.Form):
    name = forms.CharField(label="Name", max_length=64)
    description = forms.CharField(label="Description", required=False, max_length=255)

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"])


class UserForm(forms.Form):
    name = forms.CharField(label="User name", max_length=255)
    password = forms.CharField(label="Password", widget=forms.PasswordInput, min_length=8)
    email = forms.EmailField(label="Email", required=False)

    def clean_name(self) -> str:
        return check_name(self.cleaned_data["name"], "User name")


class PasswordForm(forms.Form):
    password = forms.CharField(label="New password", widget=forms.PasswordInput, min_length=8,
                               strip=False)
    confirm = forms.CharField(label="The same again", widget=forms.PasswordInput, strip=False)

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password") != cleaned.get("confirm"):
            self.add_error("confirm", "The two passwords differ.")
        return cleaned


_QUOTA_LABELS = {
    "instances": "Instances", "cores": "vCPUs", "ram": "RAM (MiB)",
    "metadata_items": "Metadata items per instance", "key_pairs": "Key pairs per user",
    "server_groups": "Server groups", "server_group_members": "Members per server group",
}


class QuotaForm(forms.Form):
    """One field per quota resource (-1: unlimited), starting from the project's limits now."""

    force = forms.BooleanField(
        label="Set limits below what the project already uses", required=False)

    def __init__(self, limits: dict[str, int], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.current = limits
        for resource in quotas.RESOURCES:
            self.fields[resource] = forms.IntegerField(
                label=_QUOTA_LABELS.get(resource, resource.replace("_", " ").capitalize()),
                min_value=quotas.UNLIMITED, max_value=quotas.MAX_LIMIT,
                initial=limits[resource],
            )
        self.order_fields([*quotas.RESOURCES, "force"])

    def changed_limits(self) -> dict[str, int]:
        return {r: self.cleaned_data[r] for r in quotas.RESOURCES
                if self.cleaned_data[r] != self.current[r]}


class GrantForm(forms.Form):
    user = forms.ChoiceField(label="User")
    project = forms.ChoiceField(label="Project")
    role = forms.ChoiceField(label="Role")

    def __init__(self, users, projects, roles, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [(u.pk, u.name) for u in users]
        self.fields["project"].choices = [(p.pk, p.name) for p in projects]
        self.fields["role"].choices = [(r.pk, r.name) for r in roles]
