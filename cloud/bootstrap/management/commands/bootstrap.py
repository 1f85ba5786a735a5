"""`manage.py bootstrap`: the first-run data and credential files (logic in cloud.bootstrap.seed)."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from cloud.bootstrap.seed import bootstrap


class Command(BaseCommand):
    help = (
        "Create the standard roles, the admin and demo projects and users, flavors and the shared"
        " private network if missing, and write openrc and clouds.yaml. Safe to run repeatedly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--public-url",
            help="base URL the clients should use (default: KUMO_PUBLIC_URL, else"
            " http://127.0.0.1:$PORT)",
        )
        parser.add_argument(
            "--output-dir",
            type=Path,
            default=Path(settings.BASE_DIR),
            help="where to write openrc and clouds.yaml (default: the repository root)",
        )
        parser.add_argument(
            "--image",
            type=Path,
            help="a guest image file to register as public image kumo-tiny if it is not there yet",
        )
        parser.add_argument(
            "--ct-image",
            type=Path,
            help="a container root filesystem (tar.gz) to register as public image kumo-tiny-ct "
            "(hypervisor_type lxc) if it is not there yet",
        )
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="give the admin and demo users new random passwords even if they exist",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = bootstrap(
            options["output_dir"],
            options["public_url"],
            reset_passwords=bool(options["reset_passwords"]),
            image=options["image"],
            ct_image=options["ct_image"],
        )
        # Paths, never passwords: this output ends up in logs.
        out = self.stdout.write
        if result.created:
            out(self.style.SUCCESS("Bootstrap created: " + ", ".join(result.created)))
        else:
            out("Bootstrap: everything was already in place.")
        url = result.public_url
        out(
            f"  API:         {result.auth_url}  (also {url}/compute/v2.1, /image/v2, /network/v2.0)"
        )
        out(f"  Dashboard:   {url}/")
        out(f"  Admin:       {url}/admin/  (user admin)")
        out(f"  Credentials: {result.openrc}  (admin; `source {result.openrc.name}`)")
        out(f"               {result.clouds_yaml}  (clouds kumo and kumo-demo)")
        for account in (result.admin, result.demo):
            if account.password is None:
                out(
                    self.style.WARNING(
                        f"  The password of {account.name} is not on file; run"
                        " `manage.py bootstrap --reset-passwords` to set a new one."
                    )
                )
