"""Flavors, instances and what happens to them, and the compute services with their nodes."""

import uuid

from django.db import models

from cloud.identity.models import Project, User

from . import states

# The most rows one list answers (Nova's osapi_max_limit).
MAX_LIST_LIMIT = 1000

# Service.binary of each process kind, by Nova's names (os-services shows them).
COMPUTE_BINARY = "nova-compute"
SCHEDULER_BINARY = "nova-scheduler"
CONDUCTOR_BINARY = "nova-conductor"


def default_security_groups() -> list[str]:
    return ["default"]


class Flavor(models.Model):
    flavorid = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, unique=True)
    vcpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    root_gb = models.PositiveIntegerField(default=0)
    ephemeral_gb = models.PositiveIntegerField(default=0)
    swap = models.PositiveIntegerField(default=0)
    rxtx_factor = models.FloatField(default=1.0)
    is_public = models.BooleanField(default=True)
    disabled = models.BooleanField(default=False)
    description = models.TextField(null=True, blank=True)
    extra_specs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["flavorid"]

    def __str__(self) -> str:
        return f"{self.name} ({self.flavorid})"


class QuotaClass(models.Model):
    """A quota class's limit for one resource (os-quota-class-sets). The class named "default"
    gives every project its limits where settings.KUMO_DEFAULT_QUOTAS would (and a project's own
    Quota rows override both); other classes are stored and shown, as Nova does, but apply to
    no project."""

    name = models.CharField(max_length=255)
    resource = models.CharField(max_length=64)
    hard_limit = models.IntegerField()  # -1 means unlimited

    class Meta:
        ordering = ["name", "resource"]
        constraints = [
            models.UniqueConstraint(fields=["name", "resource"], name="uniq_quota_class_resource")
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.resource}={self.hard_limit}"


class FlavorAccess(models.Model):
    """A project allowed to see and use a private flavor (os-flavor-access). Project ids are
    taken as given, as Nova does: access can be granted before the project exists."""

    flavor = models.ForeignKey(Flavor, on_delete=models.CASCADE, related_name="access")
    project_id = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["flavor", "project_id"], name="uniq_flavor_access")
        ]

    def __str__(self) -> str:
        return f"{self.project_id} may use {self.flavor_id}"


class Instance(models.Model):
    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    display_name = models.CharField(max_length=255)
    hostname = models.CharField(max_length=255, default="", blank=True)
    description = models.TextField(null=True, blank=True)
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="instances")
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="instances")

    image_ref = models.CharField(max_length=36, blank=True, default="")
    flavor = models.ForeignKey(Flavor, null=True, blank=True, on_delete=models.SET_NULL)
    # The flavor as it was at boot: a deleted or edited flavor must not change a running server.
    flavor_snapshot = models.JSONField(default=dict)
    # While a resize waits for confirmation: the flavor to go back to on revert.
    old_flavor_snapshot = models.JSONField(null=True, blank=True)
    vcpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    root_gb = models.PositiveIntegerField()
    ephemeral_gb = models.PositiveIntegerField(default=0)

    vm_state = models.CharField(max_length=32, default=states.BUILDING, db_index=True)
    task_state = models.CharField(max_length=32, null=True, blank=True)
    power_state = models.CharField(max_length=16, default="nostate")
    host = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    node = models.CharField(max_length=255, null=True, blank=True)
    availability_zone = models.CharField(max_length=255, null=True, blank=True)
    retries = models.PositiveIntegerField(default=0)
    # Hosts a failed build already tried, so a reschedule goes elsewhere.
    tried_hosts = models.JSONField(default=list, blank=True)

    key_name = models.CharField(max_length=255, null=True, blank=True)
    key_data = models.TextField(blank=True, default="")
    user_data = models.TextField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    requested_networks = models.JSONField(default=list, blank=True)
    scheduler_hints = models.JSONField(default=dict, blank=True)
    access_ip_v4 = models.CharField(max_length=64, blank=True, default="")
    access_ip_v6 = models.CharField(max_length=64, blank=True, default="")
    config_drive = models.BooleanField(default=False)
    # The security groups asked for at boot or added since (by name), as Nova records them; the
    # network API enforces them on the server's ports.
    security_groups = models.JSONField(default=default_security_groups, blank=True)
    # Where an admin asked the server to be built (2.74 host/hypervisor_hostname, or the
    # "zone:host:node" form of availability_zone); forced skips the scheduler's filters.
    requested_host = models.CharField(max_length=255, null=True, blank=True)
    requested_node = models.CharField(max_length=255, null=True, blank=True)
    force_destination = models.BooleanField(default=False)
    locked = models.BooleanField(default=False)
    locked_reason = models.TextField(null=True, blank=True)
    launch_index = models.PositiveIntegerField(default=0)
    reservation_id = models.CharField(max_length=32, blank=True, default="")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # The VNC port of the running domain, from the host's latest report (None: not known / no
    # display). Console tokens are checked against it when a console connects.
    console_port = models.IntegerField(null=True, blank=True)
    # Or the unix socket it listens on, on hosts that put VNC there (simulated hosts).
    console_socket = models.CharField(max_length=255, blank=True, default="")
    # How far a long task is (a live migration's copy), 0-100, as Nova shows it.
    progress = models.PositiveSmallIntegerField(default=0)
    # While shelved: the snapshot its disk was saved to, which an unshelve boots from and then
    # deletes (cloud/compute/shelving.py).
    shelved_image_id = models.CharField(max_length=36, blank=True, default="")
    # While a backup uploads: how many backups of its type to keep once it is done
    # (cloud/compute/backups.py).
    backup_rotation = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-uuid"]
        indexes = [
            models.Index(fields=["project", "deleted", "-created_at"]),
            # The boots waiting to be scheduled, oldest first: a scheduler takes those waiting
            # alongside its own (cloud/scheduler/batch.py) without reading every instance.
            models.Index(fields=["created_at"], name="instance_waiting_idx",
                         condition=models.Q(task_state="scheduling", host__isnull=True,
                                            deleted=False)),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.uuid})"

    @property
    def status(self) -> str:
        return states.status(self.vm_state, self.task_state)


class InstanceTag(models.Model):
    """One tag of a server (2.26): a short string, at most 50 per server."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="tags")
    tag = models.CharField(max_length=60)

    class Meta:
        ordering = ["tag"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "tag"], name="uniq_instance_tag")
        ]

    def __str__(self) -> str:
        return f"{self.tag} on {self.instance_id}"


class InstanceFault(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="faults")
    code = models.PositiveIntegerField(default=500)
    message = models.CharField(max_length=255)
    details = models.TextField(blank=True, default="")
    host = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


class InstanceAction(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="actions")
    action = models.CharField(max_length=64)
    request_id = models.CharField(max_length=64)
    user_id = models.CharField(max_length=64)
    project_id = models.CharField(max_length=64)
    start_time = models.DateTimeField(auto_now_add=True)
    finish_time = models.DateTimeField(null=True, blank=True)
    message = models.CharField(max_length=255, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start_time", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.request_id}"


class InstanceActionEvent(models.Model):
    action = models.ForeignKey(InstanceAction, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=64)
    start_time = models.DateTimeField(auto_now_add=True)
    finish_time = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=32, null=True, blank=True)
    traceback = models.TextField(null=True, blank=True)
    host = models.CharField(max_length=255, null=True, blank=True)
    details = models.TextField(null=True, blank=True)

    class Meta:
        ordering = ["start_time", "id"]

    def __str__(self) -> str:
        return f"{self.event} {self.result}"


class Service(models.Model):
    """A control-plane or compute process, known by the heartbeats it sends."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    host = models.CharField(max_length=255)
    binary = models.CharField(max_length=64)
    topic = models.CharField(max_length=255, blank=True, default="")
    disabled = models.BooleanField(default=False)
    disabled_reason = models.CharField(max_length=255, null=True, blank=True)
    forced_down = models.BooleanField(default=False)
    last_seen_up = models.DateTimeField(null=True, blank=True)
    report_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["host", "binary"], name="uniq_service_host_binary")
        ]

    def __str__(self) -> str:
        return f"{self.binary}@{self.host}"


class ComputeNode(models.Model):
    """What a compute host has (from its reports) and what is claimed on it (from the scheduler).

    The *_used columns change only through claims (cloud/compute/claims.py), each in one conditional
    UPDATE, so they never exceed capacity × allocation ratio.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    service = models.OneToOneField(Service, on_delete=models.CASCADE, related_name="compute_node")
    host = models.CharField(max_length=255, unique=True)
    hypervisor_hostname = models.CharField(max_length=255)
    hypervisor_type = models.CharField(max_length=64, default="QEMU")
    hypervisor_version = models.BigIntegerField(default=0)
    host_ip = models.CharField(max_length=64, default="127.0.0.1")
    cpu_info = models.JSONField(default=dict, blank=True)
    vcpus = models.PositiveIntegerField(default=0)
    memory_mb = models.PositiveIntegerField(default=0)
    local_gb = models.PositiveIntegerField(default=0)
    vcpus_used = models.PositiveIntegerField(default=0)
    memory_mb_used = models.PositiveIntegerField(default=0)
    local_gb_used = models.PositiveIntegerField(default=0)
    cpu_allocation_ratio = models.FloatField(default=4.0)
    ram_allocation_ratio = models.FloatField(default=1.0)
    disk_allocation_ratio = models.FloatField(default=1.0)
    # The domains the hypervisor last said exist, as [{"uuid", "power_state"}].
    domains = models.JSONField(default=list, blank=True)
    # How another host's libvirt reaches this one to migrate a guest here; "" when it cannot.
    migration_uri = models.CharField(max_length=255, blank=True, default="")
    # The host's data plane as it reports it: "linuxbridge" carries tenant networks (bridges,
    # VXLAN, DHCP, security groups, routers); "user" or "" only qemu's user-mode NICs.
    network_driver = models.CharField(max_length=32, blank=True, default="")
    # When the host booted and its load averages, as it last reported them (Nova's uptime).
    booted_at = models.DateTimeField(null=True, blank=True)
    load_average = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.hypervisor_hostname

    @property
    def running_vms(self) -> int:
        return len(self.domains)


class KeyPair(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="keypairs")
    name = models.CharField(max_length=255)
    public_key = models.TextField()
    fingerprint = models.CharField(max_length=255)
    type = models.CharField(max_length=16, default="ssh")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="uniq_keypair_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.user_id})"


class ServerGroup(models.Model):
    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="server_groups")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="server_groups")
    # affinity, anti-affinity, soft-affinity or soft-anti-affinity
    policy = models.CharField(max_length=32)
    rules = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "uuid"]

    def __str__(self) -> str:
        return f"{self.name} ({self.policy})"


class ServerGroupMember(models.Model):
    group = models.ForeignKey(ServerGroup, on_delete=models.CASCADE, related_name="members")
    # An instance belongs to at most one group.
    instance = models.OneToOneField(Instance, on_delete=models.CASCADE, related_name="group_member")

    def __str__(self) -> str:
        return f"{self.instance_id} in {self.group_id}"


class Aggregate(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=255, unique=True)
    availability_zone = models.CharField(max_length=255, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class AggregateHost(models.Model):
    aggregate = models.ForeignKey(Aggregate, on_delete=models.CASCADE, related_name="hosts")
    host = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["aggregate", "host"], name="uniq_aggregate_host")
        ]

    def __str__(self) -> str:
        return f"{self.host} in {self.aggregate_id}"


class ConsoleToken(models.Model):
    """A one-time ticket to one instance's console (cloud/compute/consoles.py).

    Only the SHA-256 of the token is stored. The target (the compute host's address and the VNC
    port) is fixed when the token is issued, so a client can never choose where the proxy
    connects. A token opens at most one session: `used_at` is set by a conditional UPDATE, and the
    open session refreshes `seen_at` until it ends (`closed_at`).
    """

    token_hash = models.CharField(max_length=64, unique=True)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="console_tokens")
    console_type = models.CharField(max_length=32, default="novnc")
    host = models.CharField(max_length=255)
    host_address = models.CharField(max_length=64)
    # None when the host had not reported the port yet; the port known at first use counts then.
    port = models.IntegerField(null=True, blank=True)
    # Instead of host_address:port, a unix socket on this machine (a simulated host's guest).
    socket = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.console_type} console of {self.instance_id}"


class Migration(models.Model):
    """One move of an instance to another host, as Nova records it (os-migrations): live, cold, or
    a resize that had to leave its host. Its steps and statuses are in migration_records.py.

    While it is under way the instance holds claims on both hosts: its own allocation on the
    destination, and the source's, which the migration holds until the move is final (then it is
    released) or undone (then it goes back to the instance)."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="migrations")
    migration_type = models.CharField(max_length=32)  # migration, resize, live-migration
    status = models.CharField(max_length=32, db_index=True)
    source_compute = models.CharField(max_length=255)
    source_node = models.CharField(max_length=255)
    dest_compute = models.CharField(max_length=255, null=True, blank=True)
    dest_node = models.CharField(max_length=255, null=True, blank=True)
    dest_host = models.CharField(max_length=64, null=True, blank=True)  # its address, as in Nova
    requested_host = models.CharField(max_length=255, null=True, blank=True)
    # What the instance was when the move began: a reverted cold move starts it again only if it
    # was running.
    source_vm_state = models.CharField(max_length=32, blank=True, default="")
    # An evacuation asked at 2.95 or later: the server is left stopped on its new host (Nova's
    # rule), whatever it was before.
    stop_at_destination = models.BooleanField(default=False)
    old_flavor = models.JSONField(null=True, blank=True)
    new_flavor = models.JSONField(null=True, blank=True)
    memory_total = models.BigIntegerField(null=True, blank=True)
    memory_processed = models.BigIntegerField(null=True, blank=True)
    memory_remaining = models.BigIntegerField(null=True, blank=True)
    disk_total = models.BigIntegerField(null=True, blank=True)
    disk_processed = models.BigIntegerField(null=True, blank=True)
    disk_remaining = models.BigIntegerField(null=True, blank=True)
    user_id = models.CharField(max_length=64, blank=True, default="")
    project_id = models.CharField(max_length=64, blank=True, default="")
    fault = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["instance", "status"])]

    def __str__(self) -> str:
        return f"{self.migration_type} of {self.instance_id}: {self.source_compute} → " \
            f"{self.dest_compute} ({self.status})"


class Allocation(models.Model):
    """What one instance (or, for the source of a move, its migration) has claimed on one node
    (cloud/compute/claims.py)."""

    # One claim per instance: a redelivered schedule task cannot claim twice. During a move the
    # source's claim belongs to the migration instead (instance NULL), so the instance can hold its
    # claim on the destination at the same time.
    instance = models.OneToOneField(
        Instance, on_delete=models.CASCADE, related_name="allocation", null=True, blank=True
    )
    migration = models.OneToOneField(
        Migration, on_delete=models.CASCADE, related_name="allocation", null=True, blank=True
    )
    node = models.ForeignKey(ComputeNode, on_delete=models.PROTECT, related_name="allocations")
    vcpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    disk_gb = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Moved from the scheduler app; the table keeps its name (migration 0006).
        db_table = "scheduler_allocation"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(instance__isnull=False) | models.Q(migration__isnull=False),
                name="allocation_has_a_consumer",
            )
        ]

    def __str__(self) -> str:
        return f"{self.instance_id or self.migration_id} on {self.node}"


class HostDrain(models.Model):
    """An operator's request to empty a host: it is disabled, then each guest moves away, a few at
    a time (cloud/scheduler/drains.py). `guests` holds each guest's part, in the order they move
    (a list: jsonb keeps no key order): [{"id", "name", "state" (pending, moving, done, failed),
    "migration" (its id once it moves), "message"}]."""

    RUNNING = "running"
    COMPLETED = "completed"  # every guest left the host
    FAILED = "failed"  # done, but some guests could not be moved (their messages say why)
    CANCELLED = "cancelled"  # stopped by the operator; moves under way were let finish

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    host = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=16, default=RUNNING)
    reason = models.CharField(max_length=255, blank=True, default="")
    # Who asked (user and project ids and names): the guests' moves are made in their name.
    requested_by = models.JSONField(default=dict)
    request_id = models.CharField(max_length=64, blank=True, default="")
    guests = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A second drain of a host while one runs would start the same guests' moves twice.
            models.UniqueConstraint(fields=["host"], condition=models.Q(status="running"),
                                    name="one_running_drain_per_host")
        ]

    def __str__(self) -> str:
        return f"drain of {self.host} ({self.status})"


class HostFailure(models.Model):
    """One compute host's failure, from its first missed heartbeats to its guests' recovery and its
    return (cloud/conductor/host_watch.py moves it; cloud/compute/host_failures.py names the
    statuses). `guests` holds each guest's part, in the order they are recovered:
    [{"id", "name", "ha", "state" (pending, evacuating, done, failed, left), "dest", "message"}]."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    host = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=32, db_index=True)
    # What it waits for or last did, in words an operator can act on.
    message = models.CharField(max_length=512, blank=True, default="")
    fencing_driver = models.CharField(max_length=64, blank=True, default="")
    fence_attempts = models.PositiveIntegerField(default=0)
    # Whether the host watch set the service's forced_down (then its return unsets it).
    forced_down_by_watch = models.BooleanField(default=False)
    # The service was forced down already when the failure opened (maintenance, an earlier
    # failure): that old flag confirms nothing about this failure.
    was_forced_down = models.BooleanField(default=False)
    # An operator confirmed on the dashboard that the host is off.
    confirmed_by_operator = models.BooleanField(default=False)
    # The first report seen after the fence: the host counts as back only once a later one
    # arrives too (a single report that waited in the queue proves nothing).
    seen_after_fence = models.DateTimeField(null=True, blank=True)
    guests = models.JSONField(default=list)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    fenced_at = models.DateTimeField(null=True, blank=True)
    recovered_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            # Two watchers (several conductors) must not open two failures of one host.
            models.UniqueConstraint(fields=["host"], condition=models.Q(closed_at__isnull=True),
                                    name="one_open_failure_per_host")
        ]

    def __str__(self) -> str:
        return f"failure of {self.host}: {self.status}"


class BlockDeviceMapping(models.Model):
    """One volume of a server as the guest sees it (Nova's block device mapping; the volume and
    its attachment are cloud.volumes' rows, named by id). A server booted from an image has no
    row for its local root disk."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)  # 2.89's bdm_uuid
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="block_devices")
    volume_id = models.UUIDField(null=True, blank=True, db_index=True)  # None until created
    device_name = models.CharField(max_length=255, blank=True, default="")  # /dev/vdb
    boot_index = models.IntegerField(null=True, blank=True)  # 0: the root disk; None: not bootable
    source_type = models.CharField(max_length=16, default="volume")  # volume image snapshot blank
    destination_type = models.CharField(max_length=16, default="volume")
    delete_on_termination = models.BooleanField(default=False)
    tag = models.CharField(max_length=60, null=True, blank=True)
    attachment_id = models.UUIDField(null=True, blank=True)
    volume_size = models.PositiveIntegerField(null=True, blank=True)  # GiB, for volumes made
    image_id = models.CharField(max_length=36, blank=True, default="")
    snapshot_id = models.CharField(max_length=36, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instance", "id"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "volume_id"],
                                    name="one_mapping_per_volume_and_server"),
        ]

    def __str__(self) -> str:
        return f"{self.device_name or '?'} of {self.instance_id}: {self.volume_id}"
