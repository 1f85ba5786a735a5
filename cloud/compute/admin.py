from django.contrib import admin

from .models import (
    Aggregate,
    AggregateHost,
    Allocation,
    BlockDeviceMapping,
    ComputeNode,
    ConsoleToken,
    Flavor,
    FlavorAccess,
    HostDrain,
    HostFailure,
    Instance,
    InstanceAction,
    InstanceActionEvent,
    InstanceFault,
    InstanceTag,
    KeyPair,
    Migration,
    QuotaClass,
    ServerGroup,
    ServerGroupMember,
    Service,
)


@admin.register(Flavor)
class FlavorAdmin(admin.ModelAdmin):
    list_display = ("flavorid", "name", "vcpus", "memory_mb", "root_gb", "is_public", "disabled")
    search_fields = ("name", "flavorid")


class FaultInline(admin.TabularInline):
    model = InstanceFault
    extra = 0


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ("display_name", "uuid", "project", "vm_state", "task_state", "host", "deleted")
    list_filter = ("vm_state", "deleted", "host")
    search_fields = ("display_name", "uuid", "host")
    inlines = [FaultInline]


@admin.register(QuotaClass)
class QuotaClassAdmin(admin.ModelAdmin):
    list_display = ("name", "resource", "hard_limit")


@admin.register(FlavorAccess)
class FlavorAccessAdmin(admin.ModelAdmin):
    list_display = ("flavor", "project_id")


@admin.register(InstanceTag)
class InstanceTagAdmin(admin.ModelAdmin):
    list_display = ("instance", "tag")
    search_fields = ("tag",)


@admin.register(InstanceFault)
class InstanceFaultAdmin(admin.ModelAdmin):
    list_display = ("instance", "code", "message", "host", "created_at")


class EventInline(admin.TabularInline):
    model = InstanceActionEvent
    extra = 0


@admin.register(InstanceAction)
class InstanceActionAdmin(admin.ModelAdmin):
    list_display = ("instance", "action", "request_id", "start_time", "finish_time")
    search_fields = ("request_id",)
    inlines = [EventInline]


@admin.register(InstanceActionEvent)
class InstanceActionEventAdmin(admin.ModelAdmin):
    list_display = ("action", "event", "result", "host", "start_time", "finish_time")


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("binary", "host", "disabled", "forced_down", "last_seen_up")
    list_filter = ("binary", "disabled")


@admin.register(ComputeNode)
class ComputeNodeAdmin(admin.ModelAdmin):
    list_display = (
        "hypervisor_hostname", "vcpus", "vcpus_used", "memory_mb", "memory_mb_used",
        "local_gb", "local_gb_used", "updated_at",
    )


@admin.register(KeyPair)
class KeyPairAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "type", "fingerprint", "created_at")
    search_fields = ("name", "fingerprint")


class MemberInline(admin.TabularInline):
    model = ServerGroupMember
    extra = 0


@admin.register(ServerGroup)
class ServerGroupAdmin(admin.ModelAdmin):
    list_display = ("name", "uuid", "policy", "project", "created_at")
    inlines = [MemberInline]


@admin.register(ServerGroupMember)
class ServerGroupMemberAdmin(admin.ModelAdmin):
    list_display = ("group", "instance")


class AggregateHostInline(admin.TabularInline):
    model = AggregateHost
    extra = 0


@admin.register(Aggregate)
class AggregateAdmin(admin.ModelAdmin):
    list_display = ("name", "availability_zone", "created_at")
    inlines = [AggregateHostInline]


@admin.register(AggregateHost)
class AggregateHostAdmin(admin.ModelAdmin):
    list_display = ("aggregate", "host")


@admin.register(ConsoleToken)
class ConsoleTokenAdmin(admin.ModelAdmin):
    # token_hash stays off the list: it identifies a live ticket and is of no use to an operator.
    list_display = ("instance", "console_type", "host", "port", "expires_at", "used_at", "closed_at")
    list_filter = ("console_type",)
    readonly_fields = ("token_hash",)


@admin.register(Allocation)
class AllocationAdmin(admin.ModelAdmin):
    list_display = ("instance", "node", "vcpus", "memory_mb", "disk_gb", "created_at")
    list_filter = ("node",)


@admin.register(Migration)
class MigrationAdmin(admin.ModelAdmin):
    list_display = ("id", "instance", "migration_type", "status", "source_compute", "dest_compute",
                    "created_at")
    list_filter = ("migration_type", "status")


@admin.register(HostDrain)
class HostDrainAdmin(admin.ModelAdmin):
    list_display = ("uuid", "host", "status", "reason", "created_at", "finished_at")
    list_filter = ("status", "host")


@admin.register(HostFailure)
class HostFailureAdmin(admin.ModelAdmin):
    # The host watch moves a failure by compare-and-swap: edits by hand would race it.
    list_display = ("uuid", "host", "status", "fencing_driver", "detected_at", "fenced_at",
                    "recovered_at", "closed_at")
    list_filter = ("status", "host")
    readonly_fields = ("uuid", "host", "status", "message", "fencing_driver", "fence_attempts",
                       "forced_down_by_watch", "was_forced_down", "confirmed_by_operator",
                       "seen_after_fence", "guests", "last_heartbeat", "detected_at",
                       "fenced_at", "recovered_at", "closed_at")


@admin.register(BlockDeviceMapping)
class BlockDeviceMappingAdmin(admin.ModelAdmin):
    # Attach and detach move the volume's attachment with it (server_volumes): read only here.
    list_display = ("instance", "device_name", "volume_id", "boot_index", "source_type",
                    "delete_on_termination", "created_at")
    search_fields = ("instance__uuid", "volume_id")
    readonly_fields = ("uuid", "instance", "volume_id", "device_name", "boot_index",
                       "source_type", "destination_type", "attachment_id", "volume_size",
                       "image_id", "snapshot_id", "tag", "created_at")
