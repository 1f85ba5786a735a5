"""Migrations, as Nova serves them: every one (os-migrations, admins), and a server's own
(/servers/{id}/migrations: list and show those in progress, abort one, force one to complete)."""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud import errors
from cloud.compute import migration_records
from cloud.compute.models import Migration

from ..base import ComputeView
from . import bodies, params

_FORCE_COMPLETE = {
    "type": "object",
    "required": ["force_complete"],
    "properties": {"force_complete": {"type": "null"}},
    "additionalProperties": False,
}


def _flavor_id(flavor: dict | None) -> int | None:
    value = (flavor or {}).get("id")
    return int(str(value)) if str(value).isdigit() else None


class MigrationList(ComputeView):
    query_params = {"GET": ("host", "status", "instance_uuid", "migration_type",
                            "source_compute", "user_id", "project_id", "changes-since",
                            "changes-before", "limit", "marker", "hidden")}

    def get(self, request: Request) -> Response:
        self.authorize("compute:migrations:index")
        query = request.query_params
        paged = self.version.at_least("2.59")
        limit = params.limit_param(query)
        changes_since = params.datetime_param(query, "changes-since")
        changes_before = params.datetime_param(query, "changes-before")
        rows = migration_records.list_migrations(
            self.ctx, host=query.get("host"), status=query.get("status"),
            instance_uuid=query.get("instance_uuid"), migration_type=query.get("migration_type"),
            source_compute=query.get("source_compute"),
            user_id=query.get("user_id") if self.version.at_least("2.80") else None,
            project_id=query.get("project_id") if self.version.at_least("2.80") else None,
            changes_since=changes_since if paged else None,
            changes_before=changes_before if paged and self.version.at_least("2.66") else None,
            limit=limit if paged else None, marker=query.get("marker") if paged else None)
        body: dict = {"migrations": [self.migration_body(m) for m in rows]}
        if paged:
            links = params.next_link(self.compute_url("os-migrations"), rows, limit,
                                     lambda m: str(m.uuid))
            if links:
                body["migrations_links"] = links
        return Response(body)

    def migration_body(self, migration: Migration) -> dict:
        body = {
            "id": migration.pk,
            "instance_uuid": str(migration.instance_id),
            "status": migration.status,
            "source_compute": migration.source_compute,
            "source_node": migration.source_node,
            "dest_compute": migration.dest_compute,
            "dest_node": migration.dest_node,
            "dest_host": migration.dest_host,
            "old_instance_type_id": _flavor_id(migration.old_flavor),
            "new_instance_type_id": _flavor_id(migration.new_flavor),
            "created_at": bodies.iso_micro(migration.created_at),
            "updated_at": bodies.iso_micro(migration.updated_at),
        }
        if self.version.at_least("2.23"):
            body["migration_type"] = migration.migration_type
            if migration.migration_type == migration_records.LIVE and \
                    migration.status in ("queued", "preparing", "running"):
                href = self.compute_url("servers", str(migration.instance_id), "migrations",
                                        str(migration.pk))
                body["links"] = [{"rel": "self", "href": href},
                                 {"rel": "bookmark", "href": self.compute_url(
                                     "servers", str(migration.instance_id), "migrations",
                                     str(migration.pk), bookmark=True)}]
        if self.version.at_least("2.59"):
            body["uuid"] = str(migration.uuid)
        if self.version.at_least("2.80"):
            body["user_id"] = migration.user_id
            body["project_id"] = migration.project_id
        return body


def server_migration_body(view: ComputeView, migration: Migration) -> dict:
    body = {
        "id": migration.pk,
        "server_uuid": str(migration.instance_id),
        "status": migration.status,
        "source_compute": migration.source_compute,
        "source_node": migration.source_node,
        "dest_compute": migration.dest_compute,
        "dest_node": migration.dest_node,
        "dest_host": migration.dest_host,
        "memory_total_bytes": migration.memory_total,
        "memory_processed_bytes": migration.memory_processed,
        "memory_remaining_bytes": migration.memory_remaining,
        "disk_total_bytes": migration.disk_total,
        "disk_processed_bytes": migration.disk_processed,
        "disk_remaining_bytes": migration.disk_remaining,
        "created_at": bodies.iso_micro(migration.created_at),
        "updated_at": bodies.iso_micro(migration.updated_at),
    }
    if view.version.at_least("2.59"):
        body["uuid"] = str(migration.uuid)
    if view.version.at_least("2.80"):
        body["user_id"] = migration.user_id
        body["project_id"] = migration.project_id
    return body


class ServerMigrationList(ComputeView):
    def get(self, request: Request, server_id: str) -> Response:
        self.require_version("2.23")
        instance = self.authorized_server(server_id, "compute:server_migrations:index")
        live = [m for m in migration_records.of_server(instance)
                if m.migration_type == migration_records.LIVE]
        return Response({"migrations": [server_migration_body(self, m) for m in live]})


class ServerMigrationItem(ComputeView):
    def get(self, request: Request, server_id: str, migration_id: str) -> Response:
        self.require_version("2.23")
        instance = self.authorized_server(server_id, "compute:server_migrations:show")
        migration = migration_records.get_migration(instance, migration_id)
        if migration.status not in ("queued", "preparing", "running") or \
                migration.migration_type != migration_records.LIVE:
            # Nova shows only a live migration in progress here.
            raise errors.NotFound(f"Migration {migration_id} for instance {instance.uuid} is not "
                                  "a live migration in progress.")
        return Response({"migration": server_migration_body(self, migration)})

    def delete(self, request: Request, server_id: str, migration_id: str) -> Response:
        self.require_version("2.24")
        instance = self.authorized_server(server_id, "compute:server_migrations:delete")
        migration = migration_records.get_migration(instance, migration_id)
        # Before 2.65 only a running live migration can be aborted (not a queued or preparing one).
        migration_records.abort(self.ctx, instance, migration,
                                queued_too=self.version.at_least("2.65"))
        return Response(status=202)


class ServerMigrationAction(ComputeView):
    body_schemas = {"POST": _FORCE_COMPLETE}

    def post(self, request: Request, server_id: str, migration_id: str) -> Response:
        self.require_version("2.22")
        instance = self.authorized_server(server_id, "compute:server_migrations:force_complete")
        self.valid_body()
        migration = migration_records.get_migration(instance, migration_id)
        migration_records.force_complete(self.ctx, instance, migration)
        return Response(status=202)


urlpatterns = [
    path("/os-migrations", MigrationList.as_view()),
    path("/servers/<str:server_id>/migrations", ServerMigrationList.as_view()),
    path("/servers/<str:server_id>/migrations/<str:migration_id>",
         ServerMigrationItem.as_view()),
    path("/servers/<str:server_id>/migrations/<str:migration_id>/action",
         ServerMigrationAction.as_view()),
]
