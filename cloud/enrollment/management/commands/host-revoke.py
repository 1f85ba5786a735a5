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
        host = options["host"]
        try:
            revoked = host_credentials.revoke(host)
        except errors.KumoError as exc:
            raise CommandError(exc.message) from exc
        if revoked.tokens:
            self.stdout.write(f"withdrew {revoked.tokens} unused join token"
                              f"{'' if revoked.tokens == 1 else 's'} for host {host}")
        if revoked.credential:
            self.stdout.write(f"host {host} revoked: its broker user is deleted")
        elif not revoked.tokens:
            raise CommandError(f"host {host} has no credential and no unused join token")
