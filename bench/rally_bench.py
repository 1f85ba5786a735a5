"""rally-openstack's own scenarios, unchanged, against Kumo; keeps Rally's HTML report.

    .venv/bin/python -m bench.rally_bench [--times 10] [--concurrency 2] [--keystone-times 5]
    .venv/bin/python -m bench.rally_bench --clouds clouds.yaml     # a running `make run` instead

Starts a stack of its own (tests/stack.py: the web, schedulers, conductor and agents on libvirt's
test driver) unless --clouds names the clouds.yaml of a running one (`make bootstrap` writes it),
uploads a public image, registers the cloud as an existing Rally environment (admin credentials from
clouds.yaml) in a Rally database of this run's own, and runs bench/rally/kumo.yaml:
NovaServers.boot_and_delete_server, boot_and_list_server, boot_server_and_list_interfaces and
KeystoneBasic scenarios, each in Rally's own users (and network) context. Any failed iteration or SLA
failure ends the run with exit status 1, after the reports are written:

    artifacts/bench/rally/report.html   rally task report --html-static
    artifacts/bench/rally/results.json  rally task report --json
    artifacts/bench/rally/summary.json  per workload: iterations, errors, durations per atomic action

Rally lives in .venv-rally (requirements-rally.txt); `scripts/setup.sh --rally` makes it and is run
here first (it returns at once when nothing changed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.stack import ROOT, AgentSpec, ApiClient, Stack, qcow2_bytes

RALLY_VENV = ROOT / ".venv-rally"
RALLY = RALLY_VENV / "bin" / "rally"
TASKS = Path(__file__).parent / "rally"
OUT = Path(os.environ.get("KUMO_ARTIFACTS_DIR", ROOT / "artifacts")) / "bench" / "rally"
IMAGE = "kumo-rally"
TASK_UUID = re.compile(r"^Task +([0-9a-f-]{36}): started", re.MULTILINE)


class RallyFailed(RuntimeError):
    """A Rally command failed, or the task had failed iterations or SLA failures."""


def ensure_rally() -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "--rally"], cwd=ROOT, check=True)


def cloud_spec(clouds_yaml: Path, with_users: bool = False) -> dict[str, Any]:
    """Rally's existing@openstack spec from the clouds.yaml `manage.py bootstrap` wrote: its admin
    cloud `kumo` and, with_users, the demo cloud as an existing user (then Rally makes no tenants)."""
    clouds = yaml.safe_load(clouds_yaml.read_text())["clouds"]

    def credential(name: str) -> dict[str, str]:
        auth = clouds[name]["auth"]
        return {key: auth[key] for key in ("username", "password", "project_name",
                                           "user_domain_name", "project_domain_name")}

    admin = clouds["kumo"]
    spec: dict[str, Any] = {
        "auth_url": admin["auth"]["auth_url"],
        "region_name": admin.get("region_name", "RegionOne"),
        "endpoint_type": admin.get("interface", "public"),
        "admin": credential("kumo"),
    }
    if with_users:
        spec["users"] = [credential("kumo-demo")]
    return {"openstack": spec}


def public_image(auth_url: str, admin: dict[str, str], name: str = IMAGE) -> str:
    """A public image of that name (Rally's users find it by name from their own projects)."""
    body: dict[str, Any] = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": admin["username"], "password": admin["password"],
            "domain": {"name": admin["user_domain_name"]}}}},
        "scope": {"project": {"name": admin["project_name"],
                              "domain": {"name": admin["project_domain_name"]}}}}}
    response = requests.post(f"{auth_url}/auth/tokens", json=body, timeout=60)
    response.raise_for_status()
    api = ApiClient(auth_url.rsplit("/identity", 1)[0], response.headers["X-Subject-Token"], "2.60")
    found = api.get("/image/v2/images", params={"name": name}).json()["images"]
    if found:
        return found[0]["id"]
    created = api.post("/image/v2/images", {"name": name, "disk_format": "qcow2",
                                            "container_format": "bare", "visibility": "public"})
    created.raise_for_status()
    image_id = created.json()["id"]
    api.request("PUT", f"/image/v2/images/{image_id}/file", data=qcow2_bytes(),
                headers={"Content-Type": "application/octet-stream"}).raise_for_status()
    return image_id


@dataclass
class Rally:
    """The rally command with a database and home of its own (nothing under the user's ~/.rally)."""

    workdir: Path
    log: Path

    def __post_init__(self) -> None:
        self.config = self.workdir / "rally.conf"
        self.config.write_text(
            f"[database]\nconnection = sqlite:///{self.workdir / 'rally.sqlite'}\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "RALLY_"))}
        self.env.update({"HOME": str(self.workdir), "PYTHONWARNINGS": "ignore"})

    def __call__(self, *args: str, timeout: float = 3600) -> str:
        argv = [str(RALLY), "--config-file", str(self.config), *args]
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        with self.log.open("a") as log:
            log.write(f"$ rally {' '.join(args)}\n{done.stdout}{done.stderr}\n")
        if done.returncode != 0:
            raise RallyFailed(f"rally {args[0]} {args[1] if len(args) > 1 else ''} exited "
                              f"{done.returncode}; {self.log}:\n{(done.stdout + done.stderr)[-4000:]}")
        return done.stdout


def summarize(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per workload: iterations, errors, SLA verdict, and each atomic action's durations."""
    rows = []
    for task in results["tasks"]:
        for subtask in task["subtasks"]:
            for workload in subtask["workloads"]:
                actions: dict[str, list[float]] = {}
                for iteration in workload["data"]:
                    for action in iteration["atomic_actions"]:
                        if action.get("finished_at") is not None:
                            actions.setdefault(action["name"], []).append(
                                action["finished_at"] - action["started_at"])
                totals = [i["duration"] for i in workload["data"]]
                rows.append({
                    "scenario": next(iter(workload["scenario"])),
                    "iterations": len(workload["data"]),
                    "errors": [i["error"] for i in workload["data"] if i["error"]],
                    "pass_sla": workload["pass_sla"],
                    "sla_failures": [s for s in workload["sla_results"].get("sla", [])
                                     if not s["success"]],
                    "load_duration_s": round(workload["load_duration"], 3),
                    "full_duration_s": round(workload["full_duration"], 3),
                    "iteration_s": _figures(totals),
                    "atomic_s": {name: _figures(times) for name, times in actions.items()},
                })
    return rows


def _figures(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    return {"median": round(statistics.median(ordered), 3),
            "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
            "max": round(ordered[-1], 3), "count": len(ordered)}


def run_task(clouds_yaml: Path, task: Path, task_args: dict[str, Any], out: Path,
             with_users: bool = False) -> list[dict[str, Any]]:
    """Runs one Rally task against the cloud of clouds_yaml; writes the HTML and JSON reports to
    out; returns the summary. Raises RallyFailed on an error, a failed iteration or an SLA failure."""
    spec = cloud_spec(clouds_yaml, with_users)
    public_image(spec["openstack"]["auth_url"], spec["openstack"]["admin"],
                 task_args.get("image", IMAGE))
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("report.html", "results.json", "summary.json", "rally.log"):
        (out / stale).unlink(missing_ok=True)
    start_error: RallyFailed | None = None
    with tempfile.TemporaryDirectory(prefix="kumo-rally-") as tmp:
        # The database is the run's own and goes with tmp; Rally's log stays beside the reports.
        rally = Rally(Path(tmp), out / "rally.log")
        (rally.workdir / "spec.json").write_text(json.dumps(spec))
        rally("db", "create")
        rally("env", "create", "--name", "kumo", "--spec", str(rally.workdir / "spec.json"))
        # (`rally task start` checks the environment's health first: no `rally env check`.)
        # It exits non-zero when a workload fails its SLA: the reports are written all the same.
        started = ""
        try:
            started = rally("task", "start", "--env", "kumo", str(task),
                            "--task-args", json.dumps(task_args))
        except RallyFailed as exc:
            start_error = exc
        found = TASK_UUID.search(started)
        uuids = ([found.group(1)] if found else
                 rally("task", "list", "--all-envs", "--uuids-only").split()[-1:])
        # A report that cannot be written must not hide why the task failed.
        with contextlib.suppress(*((RallyFailed,) if start_error else ())):
            for uuid in uuids:
                rally("task", "report", uuid, "--html-static", "--out", str(out / "report.html"))
                rally("task", "report", uuid, "--json", "--out", str(out / "results.json"))
    if not (out / "results.json").exists():
        raise start_error or RallyFailed(f"Rally ran no task; see {out / 'rally.log'}")
    results = json.loads((out / "results.json").read_text())
    summary = summarize(results)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    bad = [row for row in summary if row["errors"] or not row["pass_sla"]]
    if bad:
        raise RallyFailed("Rally scenarios failed: " + "; ".join(
            f"{row['scenario']}: {len(row['errors'])}/{row['iterations']} iterations failed, "
            f"SLA {'passed' if row['pass_sla'] else 'FAILED'}, first error "
            f"{row['errors'][0][:2] if row['errors'] else None}" for row in bad))
    unfinished = [t["status"] for t in results["tasks"] if t["status"] != "finished"]
    if unfinished or start_error:
        raise start_error or RallyFailed(f"the Rally task ended {unfinished}; see {out / 'rally.log'}")
    return summary


def print_summary(summary: list[dict[str, Any]]) -> None:
    print(f"{'scenario / atomic action':58} {'n':>3} {'median s':>9} {'p90 s':>7} {'max s':>7}")
    for row in summary:
        it = row["iteration_s"]
        print(f"{row['scenario']:58} {it.get('count', 0):3d} {it.get('median', 0):9.3f} "
              f"{it.get('p90', 0):7.3f} {it.get('max', 0):7.3f}  "
              f"errors {len(row['errors'])}, SLA {'ok' if row['pass_sla'] else 'FAILED'}, "
              f"load {row['load_duration_s']} s, full {row['full_duration_s']} s")
        for name, fig in row["atomic_s"].items():
            print(f"  {name:56} {fig['count']:3d} {fig['median']:9.3f} {fig['p90']:7.3f} "
                  f"{fig['max']:7.3f}")


@contextlib.contextmanager
def own_stack(hosts: int) -> Iterator[Path]:
    """A stack of this run's own on the test driver; yields its clouds.yaml."""
    stack = Stack("rally-bench", agents=[AgentSpec(f"compute-{i}", cpus=16, memory_mb=16384)
                                         for i in range(1, hosts + 1)])
    with stack.running():
        yield stack.workdir / "clouds.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clouds", type=Path, help="clouds.yaml of a running cloud "
                        "(clouds kumo and kumo-demo, as make bootstrap writes); default: own stack")
    parser.add_argument("--task", type=Path, default=TASKS / "kumo.yaml")
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--keystone-times", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    ensure_rally()
    task_args = {"image": IMAGE, "flavor": "m1.tiny", "times": args.times,
                 "concurrency": args.concurrency, "keystone_times": args.keystone_times}
    with contextlib.ExitStack() as stack:
        clouds = args.clouds or stack.enter_context(own_stack(args.hosts))
        try:
            summary = run_task(clouds, args.task, task_args, args.out)
        except RallyFailed as exc:
            if (args.out / "summary.json").exists():
                print_summary(json.loads((args.out / "summary.json").read_text()))
            print(f"FAILED: {exc}\nreport: {args.out / 'report.html'}", file=sys.stderr)
            return 1
    print_summary(summary)
    print(f"Rally's report: {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
