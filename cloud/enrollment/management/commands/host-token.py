"""`manage.py host-token --host NAME [--ttl SECONDS]`: a one-time join token for a new host."""

# ruff: noqa: N999  (Django names a command after its file, and the command is spelt host-…)

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cloud import errors
from cloud.enrollment import join_tokens


class Command(BaseCommand):
    help = (
        "Print a one-time token with which a machine joins as compute host NAME: on it, run "
        "`python -m compute_agent join URL TOKEN` (docs/adding-a-host.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", required=True, help="the new host's name (its queue is "
                                                           "compute.NAME)")
        parser.add_argument("--ttl", type=int, default=None,
                            help=f"seconds the token stays valid (default "
                                 f"{settings.KUMO_JOIN_TOKEN_TTL}, KUMO_JOIN_TOKEN_TTL)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            issued = join_tokens.issue(options["host"], options["ttl"], issued_by="manage.py")
        except errors.KumoError as exc:
            raise CommandError(exc.message) from exc
        expires = issued.record.expires_at.isoformat(timespec="seconds")
        if options["verbosity"] >= 1:
            self.stderr.write(f"join token for host {issued.record.host}, valid until {expires}, "
                              "usable once; on the new host run:")
            self.stderr.write(f"  python -m compute_agent join {settings.KUMO_INTERNAL_URL} "
                              f"{issued.token}")
        self.stdout.write(issued.token)
