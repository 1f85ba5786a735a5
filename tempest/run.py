"""`make tempest`: run Tempest's compute tests against a Kumo stack.

    python tempest/run.py [--url http://127.0.0.1:8000 --openrc openrc] [--start-stack] [-k REGEX]

With --start-stack it starts its own stack (tests/stack.py: PostgreSQL, Redis, every process, two
compute agents) and stops it afterwards; otherwise it uses the running one named by --url and
--openrc. It creates the accounts Tempest needs through the identity API (five members, five
readers, two admins, four service users), uploads two images, writes tempest.conf and
accounts.yaml into a fresh workspace, and runs the tests listed in tempest/tests.txt, one at a
time.
"""

from __future__ import annotations

import argparse
import json
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


def _full(cls: str) -> str:
    # A class of another service is named in full (tempest.api.identity.…); compute's are
    # relative to tempest.api.compute.
    return cls if cls.startswith("tempest.") else f"tempest.api.compute.{cls}"


def include_lines(listing: Path, pattern: str | None) -> list[str]:
    """Regexes for `tempest run --include-list`: a whole class ("Class"), or some of its tests
    ("Class: test_a, test_b")."""
    lines = []
    for raw in listing.read_text().splitlines():
        raw = raw.split("#", 1)[0].strip()
        if not raw:
            continue
        cls, _, tests = raw.partition(":")
        module = _full(cls.strip())
        if not tests.strip():
            # A pattern that does not name the class may still name some of its tests.
            wanted = "" if not pattern or re.search(pattern, module) else f"(?=.*(?:{pattern}))"
            lines.append(re.escape(module) + r"\." + wanted)
            continue
        for test in (t.strip() for t in tests.split(",")):
            full = f"{module}.{test}"
            if pattern and not re.search(pattern, full):
                continue
            # Ids carry "[id-…,smoke]" tags: the "\[" keeps test_x from matching test_x_more.
            lines.append(re.escape(full) + r"\[")
    return lines


def skip_lines(listing: Path) -> list[tuple[str, str]]:
    """(regex, reason) for each test Kumo cannot pass yet (tempest/skips.txt)."""
    skips = []
    for raw in listing.read_text().splitlines():
        regex, _, reason = raw.partition("#")
        if regex.strip():
            skips.append(("tempest\\.api\\." + regex.strip(), reason.strip()))
    return skips


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

    def role(self, name: str) -> dict:
        existing = self._find("roles", name)
        if existing:
            return existing
        made = self.session.post(f"{self.url}/identity/v3/roles", json={"role": {"name": name}},
                                 timeout=60)
        made.raise_for_status()
        return made.json()["role"]

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


def public_network(url: str, token: str) -> str:
    """The external network floating IPs and router gateways come from: the stack's own, or one
    made here (flat, on the hosts' physical network "public") when it has none."""
    headers = {"X-Auth-Token": token}
    base = f"{url}/network/v2.0"
    found = requests.get(f"{base}/networks?router:external=true", headers=headers, timeout=30)
    found.raise_for_status()
    if found.json()["networks"]:
        return found.json()["networks"][0]["id"]
    made = requests.post(f"{base}/networks", headers=headers, timeout=30,
                         json={"network": {"name": "public", "router:external": True}})
    made.raise_for_status()
    network = made.json()["network"]["id"]
    requests.post(f"{base}/subnets", headers=headers, timeout=30, json={"subnet": {
        "network_id": network, "cidr": "172.24.4.0/24", "ip_version": 4,
        "enable_dhcp": False, "name": "public-subnet"}}).raise_for_status()
    return network


# The Neutron extensions Kumo has (GET /network/v2.0/extensions): Tempest's default, "all", would
# run the tests of every extension Neutron has.
NETWORK_EXTENSIONS = (
    "agent,allowed-address-pairs,binding,external-net,ext-gw-mode,extraroute,network-mtu,"
    "net-mtu-writable,port-security,project-id,provider,quotas,quota_details,router,"
    "security-group,stateful-security-group,standard-attr-description,standard-attr-revisions,"
    "standard-attr-timestamp,subnet-external-network,ip-substring-filtering"
)


def write_config(url: str, admin_password: str, image: str, image_alt: str,
                 public: str = "") -> None:
    # The stack's own discovery document says how far its microversions go.
    max_version = requests.get(f"{url}/compute/v2.1", timeout=30).json()["version"]["version"]
    volume_max = requests.get(f"{url}/volume/v3", timeout=30).json()["versions"][0]["version"]
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
application_credentials = true
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
shelve = true
cold_migration = false
live_migration = false
rescue = true
metadata_service = false
config_drive = false
interface_attach = true
enable_instance_password = false
attach_encrypted_volume = false
disk_config = false
[image-feature-enabled]
import_image = true
[network]
public_network_id = {public}
floating_network_name = public
project_networks_reachable = false
[network-feature-enabled]
ipv6 = false
floating_ips = true
api_extensions = {NETWORK_EXTENSIONS}
[validation]
run_validation = false
[volume]
catalog_type = volumev3
endpoint_type = publicURL
region = RegionOne
build_timeout = 120
volume_size = 1
min_microversion = 3.0
max_microversion = {volume_max}
storage_protocol = nbd
disk_format = raw,qcow2
[volume-feature-enabled]
backup = false
snapshot = true
clone = true
manage_volume = false
manage_snapshot = false
extend_attached_volume = false
extend_attached_encrypted_volume = false
extend_volume_with_snapshot = true
multi_backend = false
volume_revert = false
cluster_active_active = false
[service_available]
nova = true
glance = true
neutron = true
cinder = true
swift = false
horizon = false
""")


def write_accounts(url: str, admin_password: str) -> None:
    identity = Identity(url, admin_password)
    password = secrets.token_urlsafe(16)
    members, readers = [], []
    # Five members: two workers each holding a primary and an "alt" member at once (the network
    # admin classes make the alt create floating IPs) must never be handed a reader as alt.
    for i in range(1, 6):
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
    # Nova's service user (admin and "service": Tempest's os_service_user, which the swap
    # negative and external events classes call Nova as). Tempest never hands an admin-role
    # account to a non-admin, but picks a class's admin at random among every admin-role account:
    # four, so with two workers each holding an admin and a service user, one is always free.
    identity.role("service")
    for i in range(1, 5):
        identity.user(f"tempest_service{i}", password, admin_project, ["admin", "service"])
        entries.append({"username": f"tempest_service{i}", "project_name": "admin",
                        "password": password, "user_domain_name": "Default",
                        "project_domain_name": "Default", "roles": ["admin", "service"],
                        "resources": {"network": "private"}})
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
                 upload_image(url, token, "tempest-image-alt"), public_network(url, token))
    include = WORKSPACE / "include.txt"
    include.write_text("\n".join(include_lines(ROOT / "tempest" / "tests.txt", pattern)) + "\n")
    exclude = WORKSPACE / "exclude.txt"
    skips = skip_lines(ROOT / "tempest" / "skips.txt")
    exclude.write_text("".join(f"{regex}\n" for regex, _ in skips) or "^$\n")
    proc = subprocess.Popen(
        [tempest, "run", "--workspace-path", str(WORKSPACE), "--include-list", str(include),
         "--exclude-list", str(exclude), "--concurrency", str(concurrency)],
        cwd=WORKSPACE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
    status = proc.wait()
    report(skips)
    return status


# Read the last run's subunit stream in Tempest's own virtualenv (subunit and testtools live
# there): one JSON line per test with its id, status and skip reason.
_RESULTS = """
import json, sys
import subunit, testtools
results = []
def on_test(test):
    reason = test["details"].get("reason")
    results.append({"id": test["id"], "status": test["status"],
                    "reason": reason.as_text() if reason is not None else ""})
stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
result = testtools.StreamToDict(on_test)
result.startTestRun()
stream.run(result)
result.stopTestRun()
for r in results:
    print(json.dumps(r))
"""


def report(skips: list[tuple[str, str]]) -> None:
    """Counts per API (compute, identity, image): ran, passed, failed, and the skipped ones by
    reason; then the tests tempest/skips.txt kept out, by reason. CI prints it; the closing notes
    quote it."""
    stream = subprocess.run([str(TEMPEST_VENV / "bin" / "stestr"), "last", "--subunit"],
                            cwd=WORKSPACE, capture_output=True, check=False)
    parsed = subprocess.run([str(TEMPEST_VENV / "bin" / "python"), "-c", _RESULTS],
                            input=stream.stdout, capture_output=True, check=False)
    tests = [json.loads(line) for line in parsed.stdout.decode().splitlines() if line.strip()]
    totals: dict[str, dict[str, int]] = {}
    reasons: dict[str, int] = {}
    for test in tests:
        # A failed setUpClass/tearDownClass row ("setUpClass (tempest.api.…)") counts as failed.
        named = re.search(r"tempest\.api\.(\w+)\.", test["id"])
        if named is None:
            continue
        api = named.group(1)
        counts = totals.setdefault(api, {"success": 0, "fail": 0, "skip": 0})
        status = test["status"] if test["status"] in counts else "fail"
        counts[status] += 1
        if status == "skip":
            reasons[test["reason"] or "(no reason given)"] = (
                reasons.get(test["reason"] or "(no reason given)", 0) + 1)
    print("\ntempest results by API (tests that ran or were skipped by Tempest):")
    for api, counts in sorted(totals.items()):
        print(f"  {api}: {counts['success']} passed, {counts['fail']} failed, "
              f"{counts['skip']} skipped")
    if reasons:
        print("skipped by Tempest itself, by reason:")
        for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
            print(f"  {count:4d}  {reason[:160]}")
    if skips:
        print("kept out by tempest/skips.txt, by reason:")
        by_reason: dict[str, list[str]] = {}
        for regex, reason in skips:
            by_reason.setdefault(reason, []).append(regex)
        for reason, regexes in by_reason.items():
            print(f"  {len(regexes):4d}  {reason}")
    passed = sum(c["success"] for c in totals.values())
    failed = sum(c["fail"] for c in totals.values())
    skipped = sum(c["skip"] for c in totals.values())
    # A plain closing line that CI reads, whatever the runner's own summary looks like.
    print(f"tempest: {passed} passed, {failed} failed, {skipped} skipped")


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
                                     AgentSpec("compute-2", cpus=8, memory_mb=16384)],
                  volume_hosts=1)
    stack.start()
    try:
        return run(stack.url, stack.admin_password, args.pattern, args.concurrency)
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
