"""`manage.py host-revoke NAME`: take a joined host's broker credential away."""

# ruff: noqa: N999  (Django names a command after its file, and the command is spelt host-…)

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cloud import errors
from cloud.enrollment import host_credentials


class Command(BaseCommand):
    help = (
        "Delete host NAME's broker user (its agent is disconnected and cannot connect again), its "
        "credential and its unused join tokens. Its instances and compute service are untouched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("host", help="the host's name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            had = host_credentials.revoke(options["host"])
        except errors.KumoError as exc:
            raise CommandError(exc.message) from exc
        if not had:
            raise CommandError(f"host {options['host']} has no credential (unused join tokens "
                               "for it, if any, are withdrawn)")
        self.stdout.write(f"host {options['host']} revoked: its broker user is deleted")
