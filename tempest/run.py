"""`make tempest`: run Tempest's compute tests against a Kumo stack.

    python tempest/run.py [--url http://127.0.0.1:8000 --openrc openrc] [--start-stack] [-k REGEX]

With --start-stack it starts its own stack (tests/stack.py: PostgreSQL, Redis, every process, two
compute agents) and stops it afterwards; otherwise it uses the running one named by --url and
--openrc. It creates the accounts Tempest needs through the identity API (three members, three
readers, the admin), uploads two images, writes tempest.conf and accounts.yaml into a fresh
workspace, and runs the tests listed in tempest/tests.txt, one at a time.
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TEMPEST_VENV = ROOT / ".venv-tempest"
WORKSPACE = ROOT / "tempest-workspace"


def include_lines(listing: Path, pattern: str | None) -> list[str]:
    lines = []
    for raw in listing.read_text().splitlines():
        raw = raw.split("#", 1)[0].strip()
        if not raw:
            continue
        cls, _, tests = raw.partition(":")
        cls = cls.strip()
        # A class of another service is named in full (tempest.api.identity.…); compute's are
        # relative to tempest.api.compute.
        module = cls if cls.startswith("tempest.") else f"tempest.api.compute.{cls}"
        for test in (t.strip() for t in tests.split(",")):
            full = f"{module}.{test}"
            if pattern and not re.search(pattern, full):
                continue
            # Ids carry "[id-…,smoke]" tags: the "\[" keeps test_x from matching test_x_more.
            lines.append(re.escape(full) + r"\[")
    return lines


class Identity:
    def __init__(self, url: str, admin_password: str):
        self.url = url
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": admin_password}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
        response = requests.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=60)
        response.raise_for_status()
        self.session = requests.Session()
        self.session.headers["X-Auth-Token"] = response.headers["X-Subject-Token"]

    def _find(self, kind: str, name: str) -> dict | None:
        found = self.session.get(f"{self.url}/identity/v3/{kind}", params={"name": name}, timeout=60)
        found.raise_for_status()
        items = found.json()[kind]
        return items[0] if items else None

    def project(self, name: str) -> dict:
        existing = self._find("projects", name)
        if existing:
            return existing
        made = self.session.post(f"{self.url}/identity/v3/projects",
                                 json={"project": {"name": name, "domain_id": "default"}}, timeout=60)
        made.raise_for_status()
        return made.json()["project"]

    def user(self, name: str, password: str, project: dict, roles: list[str]) -> None:
        user = self._find("users", name)
        if user is None:
            made = self.session.post(f"{self.url}/identity/v3/users", json={"user": {
                "name": name, "password": password, "default_project_id": project["id"],
                "domain_id": "default"}}, timeout=60)
            made.raise_for_status()
            user = made.json()["user"]
        else:
            self.session.patch(f"{self.url}/identity/v3/users/{user['id']}",
                               json={"user": {"password": password}}, timeout=60).raise_for_status()
        for role_name in roles:
            role = self._find("roles", role_name)
            self.session.put(f"{self.url}/identity/v3/projects/{project['id']}/users/"
                             f"{user['id']}/roles/{role['id']}", timeout=60).raise_for_status()


def upload_image(url: str, token: str, name: str) -> str:
    from tests.stack import small_qcow2

    path = WORKSPACE / f"{name}.qcow2"
    small_qcow2(path)
    headers = {"X-Auth-Token": token}
    made = requests.post(f"{url}/image/v2/images", headers=headers, timeout=60, json={
        "name": name, "disk_format": "qcow2", "container_format": "bare", "visibility": "public"})
    made.raise_for_status()
    image_id = made.json()["id"]
    requests.put(f"{url}/image/v2/images/{image_id}/file", data=path.read_bytes(), timeout=120,
                 headers={**headers, "Content-Type": "application/octet-stream"}).raise_for_status()
    return image_id


def write_config(url: str, admin_password: str, image: str, image_alt: str) -> None:
    # The stack's own discovery document says how far its microversions go.
    max_version = requests.get(f"{url}/compute/v2.1", timeout=30).json()["version"]["version"]
    ws = WORKSPACE
    (ws / "etc" / "tempest.conf").write_text(f"""[DEFAULT]
log_dir = {ws}/logs
[oslo_concurrency]
lock_path = {ws}/tempest_lock
[auth]
use_dynamic_credentials = false
test_accounts_file = {ws}/etc/accounts.yaml
create_isolated_networks = false
default_credentials_domain_name = Default
admin_username = admin
admin_password = {admin_password}
admin_project_name = admin
admin_domain_name = Default
[identity]
uri_v3 = {url}/identity/v3
auth_version = v3
region = RegionOne
v3_endpoint_type = public
[identity-feature-enabled]
api_v2 = false
[compute]
image_ref = {image}
image_ref_alt = {image_alt}
flavor_ref = 1
flavor_ref_alt = 2
fixed_network_name = private
build_timeout = 120
min_microversion = 2.1
max_microversion = {max_version}
[compute-feature-enabled]
resize = true
vnc_console = true
shelve = false
cold_migration = false
live_migration = false
rescue = false
metadata_service = false
config_drive = false
interface_attach = false
enable_instance_password = false
attach_encrypted_volume = false
disk_config = false
[image-feature-enabled]
import_image = false
[network-feature-enabled]
ipv6 = false
floating_ips = false
[validation]
run_validation = false
[service_available]
nova = true
glance = true
neutron = true
cinder = false
swift = false
horizon = false
""")


def write_accounts(url: str, admin_password: str) -> None:
    identity = Identity(url, admin_password)
    password = secrets.token_urlsafe(16)
    members, readers = [], []
    for i in (1, 2, 3):
        project = identity.project(f"tempest{i}")
        for suffix, roles in (("", ["member"]), ("_reader", ["reader"])):
            name = f"tempest{i}{suffix}"
            identity.user(name, password, project, roles)
            entry = {"username": name, "project_name": project["name"], "password": password,
                     "user_domain_name": "Default", "project_domain_name": "Default",
                     "roles": roles}
            if not suffix:
                entry["resources"] = {"network": "private"}
            (readers if suffix else members).append(entry)
    # Tempest takes the "alt" account (another project's user, for the multi-tenant classes) as
    # the first free one in file order: every member first, so it is never the primary's own
    # project reader.
    entries = members + readers
    entries.append({"username": "admin", "project_name": "admin", "password": admin_password,
                    "user_domain_name": "Default", "project_domain_name": "Default",
                    "types": ["admin"], "resources": {"network": "private"}})
    # A second admin account, so two admin test classes can run at once.
    admin_project = identity.project("admin")
    identity.user("tempest_admin", password, admin_project, ["admin", "member", "reader"])
    entries.append({"username": "tempest_admin", "project_name": "admin", "password": password,
                    "user_domain_name": "Default", "project_domain_name": "Default",
                    "types": ["admin"], "resources": {"network": "private"}})
    import json

    # YAML is a superset of JSON: one entry per line keeps the file readable without PyYAML.
    text = "".join(f"- {json.dumps(e)}\n" for e in entries)
    path = WORKSPACE / "etc" / "accounts.yaml"
    path.write_text(text)
    path.chmod(0o600)


def admin_password_from(openrc: Path) -> str:
    for line in openrc.read_text().splitlines():
        if line.startswith("export OS_PASSWORD="):
            return line.split("=", 1)[1].strip().strip("'\"")
    raise SystemExit(f"no OS_PASSWORD in {openrc}")


def run(url: str, admin_password: str, pattern: str | None, concurrency: int) -> int:
    tempest = str(TEMPEST_VENV / "bin" / "tempest")
    shutil.rmtree(WORKSPACE, ignore_errors=True)
    # Tempest keeps a registry of workspaces and refuses to init a name it knows: start afresh.
    subprocess.run([tempest, "workspace", "remove", "--name", "kumo"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([tempest, "init", "--name", "kumo", str(WORKSPACE)], check=True,
                   stdout=subprocess.DEVNULL)
    identity = Identity(url, admin_password)
    token = identity.session.headers["X-Auth-Token"]
    write_accounts(url, admin_password)
    write_config(url, admin_password, upload_image(url, token, "tempest-image"),
                 upload_image(url, token, "tempest-image-alt"))
    include = WORKSPACE / "include.txt"
    include.write_text("\n".join(include_lines(ROOT / "tempest" / "tests.txt", pattern)) + "\n")
    proc = subprocess.Popen(
        [tempest, "run", "--workspace-path", str(WORKSPACE),
         "--include-list", str(include), "--concurrency", str(concurrency)],
        cwd=WORKSPACE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    counts = {"Passed": 0, "Failed": 0, "Skipped": 0}
    for line in proc.stdout:
        print(line, end="", flush=True)
        match = re.match(r"^ - (Passed|Failed|Skipped): (\d+)", line)
        if match:
            counts[match.group(1)] = int(match.group(2))
    status = proc.wait()
    # A plain closing line that CI reads, whatever the runner's own summary looks like.
    print(f"tempest: {counts['Passed']} passed, {counts['Failed']} failed, "
          f"{counts['Skipped']} skipped")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--openrc", type=Path, default=ROOT / "openrc")
    parser.add_argument("--start-stack", action="store_true")
    parser.add_argument("-k", dest="pattern", help="only tests whose id matches this regex")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    if not args.start_stack:
        return run(args.url, admin_password_from(args.openrc), args.pattern, args.concurrency)

    from tests.stack import AgentSpec, Stack

    stack = Stack("tempest", agents=[AgentSpec("compute-1", cpus=8, memory_mb=16384),
                                     AgentSpec("compute-2", cpus=8, memory_mb=16384)])
    stack.start()
    try:
        return run(stack.url, stack.admin_password, args.pattern, args.concurrency)
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
