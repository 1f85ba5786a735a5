"""Fixtures every test may use: the personas (tests/personas.py), the broker recorder (`sent`,
tests/broker.py) and the rows most API tests boot from. Row helpers are in tests/factories.py."""

import contextlib
import os
import re
import uuid
from collections.abc import Callable

os.environ.setdefault("KUMO_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

import pytest

from tests.broker import CommitsRun, Sent


def _fail_instead(report) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = f"skipped where nothing may be (KUMO_NO_SKIPS): {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With KUMO_NO_SKIPS set (.ci/run sets it: CI installs everything and runs as root), a test
    that skips fails instead, with the skip's reason: a missing package, daemon or privilege must
    not turn a CI run green by leaving tests out."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("KUMO_NO_SKIPS") and report.skipped and not hasattr(report, "wasxfail"):
        _fail_instead(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """The same for a whole module skipped while collected (pytest.importorskip at its top)."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("KUMO_NO_SKIPS") and report.skipped:
        _fail_instead(report)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def pytest_make_parametrize_id(config, val, argname):
    """A random uuid drawn at collection (an id nobody has) is named "uuid" in the test's id, not
    by its value: pytest-xdist's workers each collect, and must find the same ids."""
    if isinstance(val, uuid.UUID) or (isinstance(val, str) and _UUID.fullmatch(val)):
        return "uuid"
    return None


@pytest.fixture(autouse=True)
def _fast_password_hashing(request, settings):
    # Unit tests create many users; the production hasher's cost is exercised in integration tests.
    if "integration" not in request.keywords and "compat" not in request.keywords:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _outbox_rows_deleted_at_once(settings):
    # A test's transaction never commits, so the outbox's deleting thread (cloud/outbox/relay.py,
    # another connection) could never see its rows: each published row is deleted at once instead,
    # in the test's own transaction. tests/unit/outbox/test_relay.py tests the batches.
    settings.KUMO_OUTBOX_FORGET_EVERY = 0


# --- session stacks, stopped once the last test that uses them is done

# The nodeid of the last test (of those that run) using each session fixture, and what stops it.
_LAST_USER: dict[str, str] = {}
_RELEASE: dict[str, Callable[[], None]] = {}


def pytest_collection_finish(session):
    _LAST_USER.clear()
    for item in session.items:
        info = getattr(item, "_fixtureinfo", None)
        for name, defs in (info.name2fixturedefs.items() if info else ()):
            # The definition the test gets is the last; a module's own `stack` is not the session's.
            if defs and defs[-1].scope == "session":
                _LAST_USER[name] = item.nodeid


def release_after_last_user(name: str, release: Callable[[], None]) -> None:
    """Call `release` (idempotent: it runs again at the session's end) in the teardown of the
    last test that uses the session fixture `name`, rather than at the session's end: an idle
    stack's heartbeats, reconciler and guests would otherwise share the machine's two cores with
    every test after it."""
    _RELEASE[name] = release


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    for name in [n for n, last in _LAST_USER.items() if last == item.nodeid and n in _RELEASE]:
        _RELEASE.pop(name)()
    return result


@pytest.fixture(scope="session")
def stack():
    """One live stack for the whole session: two compute agents with room for 2 GiB each."""
    from tests.stack import AgentSpec, Stack

    live = Stack("stack", agents=[AgentSpec("compute-a"), AgentSpec("compute-b")], volume_hosts=1)
    with contextlib.ExitStack() as running:
        running.enter_context(live.running())
        release_after_last_user("stack", running.close)
        yield live


@pytest.fixture(autouse=True)
def _no_static_file_scan(request, settings):
    # Every django.test.Client builds its middleware anew, and WhiteNoise then walks the static
    # finders each time (57 ms: two thirds of a policy-matrix case). Unit tests fetch no static
    # file; the stacks of the other tests (and the browser tests' own web app) still serve them.
    if "/tests/unit/" in str(request.node.fspath):
        settings.WHITENOISE_USE_FINDERS = False


@pytest.fixture(autouse=True)
def _process_local_cache(request, settings):
    # Unit tests run in one process; the shared Redis cache is for the real, multi-process stack.
    if "integration" not in request.keywords and "compat" not in request.keywords:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture(autouse=True)
def _process_local_metrics(request, settings):
    # Unit tests count into this process's memory (cloud/metrics/store.py), not the machine's Redis.
    if "integration" not in request.keywords and "compat" not in request.keywords:
        settings.KUMO_METRICS_URL = "memory://"


@pytest.fixture
def guest_stats_redis(settings):
    """Guests' statistics (cloud/compute/guest_stats.py) kept under a key prefix of this test's
    own in the machine's Redis (a list per guest is what is being tested, so no stand-in), and
    removed afterwards."""
    import secrets

    import redis

    prefix = f"kumo-test:{secrets.token_hex(6)}:guest-stats:"
    settings.KUMO_GUEST_STATS_PREFIX = prefix
    client = redis.Redis.from_url(settings.KUMO_GUEST_STATS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {settings.KUMO_GUEST_STATS_URL}: {exc}")
    yield client
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)


@pytest.fixture
def sent(db, monkeypatch) -> list[Sent]:
    """Every message the control plane publishes during the test, in order, with on-commit
    callbacks run as a real commit would run them (tests/broker.py): a message published before
    its transaction commits, or outside one, shows up here; one rolled back does not."""
    recorded: list[Sent] = []

    def send_task(name: str, args: list | None = None, queue: str = "", **_: object) -> None:
        recorded.append(Sent(name, list(args or []), queue))

    from cloud import rpc

    CommitsRun().install(monkeypatch)
    monkeypatch.setattr(rpc.app, "send_task", send_task)
    return recorded


# --- personas: an admin, a member and a reader of project alpha, and a member of project beta


# (Imported inside the fixtures: this file loads before Django is set up, and agent tests need none.)


@pytest.fixture
def admin(db):
    from tests.personas import make_persona

    return make_persona("alice-admin", "alpha", ["admin", "member", "reader"])


@pytest.fixture
def member(db):
    from tests.personas import make_persona

    return make_persona("bob", "alpha", ["member", "reader"])


@pytest.fixture
def reader(db):
    from tests.personas import make_persona

    return make_persona("carol", "alpha", ["reader"])


@pytest.fixture
def other(db):
    from tests.personas import make_persona

    return make_persona("mallory", "beta", ["member", "reader"])


@pytest.fixture
def api_as():
    from tests.personas import Api

    def factory(persona, version=None):
        return Api(persona, version)

    return factory


# --- what servers boot from


@pytest.fixture
def tiny(db):
    from cloud.compute.models import Flavor

    return Flavor.objects.create(flavorid="1", name="m1.tiny", vcpus=1, memory_mb=128, root_gb=1)


@pytest.fixture
def image(member):
    """An active image private to the member's project."""
    from cloud.images.models import Image

    return Image.objects.create(
        name="tiny", status="active", disk_format="qcow2", container_format="bare",
        owner=member.project, visibility="private", size=1,
    )


# --- issue 19: a container on its LXC host and a VM on its qemu host, as the database holds them


@pytest.fixture
def ct_image(member):
    """A container image (a root filesystem's tar) private to the member's project."""
    from cloud.images.models import Image

    return Image.objects.create(
        name="kumo-tiny-ct", status="active", disk_format="raw", container_format="compressed",
        owner=member.project, visibility="private", size=1, properties={"hypervisor_type": "lxc"})


@pytest.fixture
def container(member, ct_image):
    """The member's container ct1 on lxc-1, a host that reported hypervisor_type LXC."""
    from tests.factories import make_node, make_server

    make_node("lxc-1", hypervisor_type="LXC")
    return make_server(member, "ct1", image_ref=str(ct_image.id), host="lxc-1", node="lxc-1")


@pytest.fixture
def vm(member, image):
    """The member's VM vm1 on compute1, a QEMU host, with a VNC console."""
    from tests.factories import make_node, make_server

    make_node("compute1", hypervisor_type="QEMU")
    return make_server(member, "vm1", image_ref=str(image.id), console_port=5900)


@pytest.fixture
def nets(admin, member, other):
    """Networks of every kind: an external one and a shared one of a services project, and one
    private network for each of projects alpha and beta."""
    from cloud.identity.models import Project
    from tests.factories import make_network

    services = Project.objects.create(name="services")
    return {
        "public": make_network("public", services, "203.0.113.0/24", external=True),
        "shared": make_network("shared", services, "10.1.0.0/24", shared=True),
        "alpha": make_network("alpha-net", member.project, "10.2.0.0/24"),
        "beta": make_network("beta-net", other.project, "10.3.0.0/24"),
    }


@pytest.fixture
def image_server(tmp_path):
    """A tiny image API on loopback (tests/unit/compute_agent/image_server.py): what hosts download
    images from and upload snapshots to, recorded."""
    from tests.unit.compute_agent.image_server import ImageServer
    from tests.unit.compute_agent.image_server import start as start_image_server

    served = tmp_path / "served"
    served.mkdir()
    state = ImageServer(root=served)
    httpd = start_image_server(state)
    yield state
    httpd.shutdown()
    httpd.server_close()
