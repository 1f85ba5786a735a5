"""Settings, read from the environment so that one code base runs as a laptop demo and in CI.

DATABASE_URL   SQLite file under var/ by default; PostgreSQL (postgres://…) in CI and production.
REDIS_URL      broker for Celery (and, later, the Channels layer).
KUMO_*         Kumo's own knobs, documented in README.md.
"""

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

# Before anything imports redis (the cache, the broker, the metrics store): without the metrics SDK
# of OpenTelemetry that redis-py 7 imports for nothing.
from cloud import optional_imports  # noqa: F401

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("KUMO_VAR_DIR", BASE_DIR / "var"))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or ""
if not SECRET_KEY:
    # A per-checkout key, generated once, so no fixed secret ships in the repository.
    _key_file = VAR_DIR / "secret_key"
    if _key_file.exists():
        SECRET_KEY = _key_file.read_text().strip()
    else:
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        SECRET_KEY = secrets.token_urlsafe(50)
        _key_file.write_text(SECRET_KEY)
        _key_file.chmod(0o600)

DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
# ALLOWED_HOSTS and the HTTPS settings follow from KUMO_PUBLIC_URL: see "Deployment" below.

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "cloud.outbox",
    "cloud.identity",
    "cloud.compute",
    "cloud.scheduler",
    "cloud.conductor",
    "cloud.images",
    "cloud.network",
    "cloud.volumes",
    "cloud.enrollment",
    "cloud.api",
    "cloud.dashboard",
    "cloud.bootstrap",
    "consoles",
]

MIDDLEWARE = [
    # First, so it times everything below it (docs/observability.md).
    "cloud.api.middleware.MetricsMiddleware",
    "cloud.api.middleware.RequestIdMiddleware",
    "cloud.api.trace_middleware.TraceMiddleware",
    "cloud.api.middleware.ApiErrorMiddleware",
    "cloud.api.middleware.RefuseNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The OpenStack APIs are addressed without trailing slashes; never redirect them.
APPEND_SLASH = False

ROOT_URLCONF = "cloud.urls"
WSGI_APPLICATION = "cloud.wsgi.application"
# The web process's front (cloud/asgi.py): websockets to Channels, HTTP to the WSGI application.
ASGI_APPLICATION = "cloud.asgi.application"
AUTH_USER_MODEL = "identity.User"
LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "dashboard:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'kumo.sqlite3'}"),
        conn_max_age=int(os.environ.get("KUMO_DB_CONN_MAX_AGE", "60")),
        # Connections are kept between requests and tasks (the workers' too: cloud/celery.py), so
        # one the database dropped (a restart, a failover) is found by a SELECT 1 at its first use
        # in a request or task and made anew, rather than failing that request or task
        # (tests/integration/test_db_reconnect.py).
        conn_health_checks=os.environ.get("KUMO_DB_HEALTH_CHECKS", "1") == "1",
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, with a health check that costs no round trip (the module says why).
    DATABASES["default"]["ENGINE"] = "cloud.dbbackend"
if DATABASES["default"]["ENGINE"] == "cloud.dbbackend" and os.environ.get(
        "KUMO_DB_PREPARE", "1") == "1":
    # Django's psycopg cursors bind parameters on the client by default, so PostgreSQL parses and
    # plans every statement anew. Bound on the server, a statement a connection has run twice is
    # prepared and only executed from then on: the same statements cost the database about 60%
    # less CPU (bench/README.md, "Prepared statements"), and the hot paths are the same few
    # statements over and over on connections kept open (CONN_MAX_AGE).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True,
        prepare_threshold=int(os.environ.get("KUMO_DB_PREPARE_THRESHOLD", "2")))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes write to one SQLite file: take the write lock at BEGIN and wait for it,
    # rather than failing with "database is locked" half-way through a transaction.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# The dashboard's browser libraries, as npm installs them (package.json), served as they are.
STATICFILES_DIRS = [
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"),
]
# WhiteNoise finds static files where they live, so a web process started without collectstatic
# (the test stacks) still serves the dashboard's scripts.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["cloud.api.auth.KeystoneTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["cloud.api.parsers.LenientJSONParser"],
    "EXCEPTION_HANDLER": "cloud.api.error_bodies.exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "cloud.api.negotiation.AlwaysJSON",
    "UNAUTHENTICATED_USER": None,
}

# --- Celery: JSON only; messages go through the outbox (cloud/outbox/), so they leave only after
# their transaction commits and none is lost while the broker is away. The broker is Redis
# (REDIS_URL) unless CELERY_BROKER_URL names another, such as amqp://… for RabbitMQ.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged when it ends, and one whose worker died is handed out again: every task
# is idempotent, so running twice is safe while never running is not.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# A worker holds no more messages than it runs: a killed worker strands as few as possible.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis hands an unacknowledged message to another worker only after this many seconds (RabbitMQ
# does at once, when the dead worker's connection drops). The control plane's tasks take
# milliseconds, so five minutes is long enough never to hand out a running task twice, and short
# enough that a redelivery comes well before the reconciler gives up (KUMO_TASK_DEADLINES).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("KUMO_VISIBILITY_TIMEOUT", "300")),
}
# A broker outage never stops a process: it reconnects for as long as it takes, and a task whose
# acknowledgement cannot reach the broker any more stops (its message comes back anyway).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# After a reconnect Celery lowers the prefetch count by the tasks that were running and raises it
# again as their acknowledgements go through; those acknowledgements belong to the dead channel and
# fail, and in CI a scheduler then took no message at all after a RabbitMQ outage. With a prefetch
# of one per thread there is nothing to over-fetch, so the reduction buys nothing.
CELERY_WORKER_ENABLE_PREFETCH_COUNT_REDUCTION = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
from cloud.beat import CELERY_BEAT_SCHEDULE  # noqa: F401  (periodic tasks, one place)

CELERY_TASK_ROUTES = {"scheduler.*": {"queue": "scheduler"}, "conductor.*": {"queue": "conductor"}}

# The Channels layer carries the conductor's instance changes to the dashboard's websockets
# (cloud/dashboard/live.py); the same Redis as the broker unless told otherwise.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [os.environ.get("KUMO_CHANNELS_URL", REDIS_URL)],
            "prefix": "kumo:channels:",
        },
    }
}

# The cache carries short-lived answers between processes (a host's console output for the web
# process that asked), so it is the shared Redis, not per-process memory.
CACHES = {
    "default": {
        "BACKEND": "cloud.cache.RedisCache",  # one pool per process (cloud/cache.py)
        "LOCATION": os.environ.get("KUMO_CACHE_URL", REDIS_URL),
        "KEY_PREFIX": "kumo",
    }
}

# /metrics (docs/observability.md). Counts every process records are summed in this Redis
# (`memory://`: this process only; `off`: not recorded). /metrics answers the addresses in
# KUMO_METRICS_ALLOWED_NETS (comma-separated CIDRs) and `Authorization: Bearer KUMO_METRICS_TOKEN`.
KUMO_METRICS_URL = os.environ.get("KUMO_METRICS_URL", REDIS_URL)
KUMO_METRICS_ALLOWED_NETS = [
    net.strip()
    for net in os.environ.get("KUMO_METRICS_ALLOWED_NETS", "127.0.0.0/8,::1/128").split(",")
    if net.strip()
]
KUMO_METRICS_TOKEN = os.environ.get("KUMO_METRICS_TOKEN", "")
# Each process sends what it counted every this many seconds from a thread of its own, so no
# request waits for Redis; 0 sends at the end of each request or task instead.
KUMO_METRICS_FLUSH_INTERVAL = float(os.environ.get("KUMO_METRICS_FLUSH_INTERVAL", "1"))

# --- Kumo
# The one address clients use (https://cloud.example.com): links, the catalog and console URLs are
# built from it, never from a request's Host header, and it decides ALLOWED_HOSTS and HTTPS below.
# Unset, a local first run answers any Host and builds links from it.
KUMO_PUBLIC_URL = os.environ.get("KUMO_PUBLIC_URL", "").rstrip("/")
# Where the dashboard links a request's trace, e.g. http://jaeger:16686/trace/{trace_id}
# (traces go there over OTLP: KUMO_TRACE_EXPORT, cloud/tracing.py).
KUMO_TRACE_URL = os.environ.get("KUMO_TRACE_URL", "")
# Where compute hosts reach the image API to download images and upload snapshots.
KUMO_INTERNAL_URL = os.environ.get("KUMO_INTERNAL_URL", "http://127.0.0.1:8000")
KUMO_REGION = os.environ.get("KUMO_REGION", "RegionOne")
KUMO_TOKEN_TTL = int(os.environ.get("KUMO_TOKEN_TTL", str(8 * 3600)))
# How long a web process may reuse what a token validated to (cloud/identity/token_cache.py): any
# identity change (a revocation, a role removed, a user or project disabled) still takes effect
# at the next request everywhere; 0 validates from the database on every request.
KUMO_TOKEN_CACHE_SECONDS = float(os.environ.get("KUMO_TOKEN_CACHE_SECONDS", "30"))
# The Fernet key (32 bytes, URL-safe base64) that the secrets of /v3/credentials (EC2 pairs) are
# stored encrypted with (cloud/identity/credentials.py); unset, a key derived from SECRET_KEY.
# Changing either makes the stored ones unreadable: they answer 503 naming the credential key.
KUMO_CREDENTIAL_KEY = os.environ.get("KUMO_CREDENTIAL_KEY", "")
KUMO_IMAGE_DIR = Path(os.environ.get("KUMO_IMAGE_DIR", VAR_DIR / "images"))
# The largest image an upload may store (bytes), checked while it streams (cloud/images/uploads.py).
KUMO_IMAGE_MAX_SIZE = int(os.environ.get("KUMO_IMAGE_MAX_SIZE", str(10 * 1024**3)))
# A request body that stops arriving for this long fails (cloud/asgi.py): an upload from a client
# that vanished ends instead of holding its image in `saving`.
KUMO_REQUEST_BODY_TIMEOUT = _env_float("KUMO_REQUEST_BODY_TIMEOUT", 300)
KUMO_SERVICE_DOWN_TIME = int(os.environ.get("KUMO_SERVICE_DOWN_TIME", "60"))
KUMO_HEARTBEAT_INTERVAL = _env_float("KUMO_HEARTBEAT_INTERVAL", 10)
# Guests' statistics (cloud/compute/guest_stats.py): the agents send them every
# KUMO_GUEST_STATS_INTERVAL s (their own setting); the control plane keeps the last
# KUMO_GUEST_STATS_HISTORY samples of each guest in this Redis, each list expiring once its guest
# stops reporting, so memory is bounded by the running guests.
KUMO_GUEST_STATS_URL = os.environ.get("KUMO_GUEST_STATS_URL") or CACHES["default"]["LOCATION"]
KUMO_GUEST_STATS_PREFIX = os.environ.get("KUMO_GUEST_STATS_PREFIX", "kumo:guest-stats:")
KUMO_GUEST_STATS_HISTORY = int(os.environ.get("KUMO_GUEST_STATS_HISTORY", "90"))
KUMO_BUILD_TIMEOUT = int(os.environ.get("KUMO_BUILD_TIMEOUT", "600"))
KUMO_MAX_BUILD_RETRIES = int(os.environ.get("KUMO_MAX_BUILD_RETRIES", "2"))
# Nova's shelved_offload_time: 0 (the default) removes a shelved server from its host as soon as
# its disk is saved (SHELVED_OFFLOADED, its claim released); a positive value that many seconds
# later (the reconciler's sweep); -1 keeps it there until shelveOffload (cloud/compute/shelving.py).
KUMO_SHELVED_OFFLOAD_TIME = int(os.environ.get("KUMO_SHELVED_OFFLOAD_TIME", "0"))
# Nothing stays stuck (cloud/conductor/reconciler.py): past its task state's deadline (seconds
# without progress) an instance is re-driven — the host asked what is true, the message sent
# again, or the task failed with a fault — at most KUMO_MAX_REDRIVES times. KUMO_TASK_DEADLINES
# overrides some: "scheduling=10,spawning=30,default=60".
KUMO_TASK_DEADLINES = {
    "scheduling": 30, "spawning": 120, "deleting": 60, "image_snapshot": 1800,
    "rebuilding": 600, "rebuild_spawning": 600, "resize_migrating": 600, "resize_reverting": 600, "migrating": 600,
    "shelving": 1800, "image_backup": 1800, "rescuing": 600, "unrescuing": 600,
    "default": 300,
    **{
        state.strip(): int(seconds)
        for state, _, seconds in (
            item.partition("=") for item in os.environ.get("KUMO_TASK_DEADLINES", "").split(",")
        )
        if state.strip() and seconds.strip().isdigit()
    },
}
KUMO_MAX_REDRIVES = int(os.environ.get("KUMO_MAX_REDRIVES", "3"))
# Instance HA (cloud/conductor/guest_recovery.py): a running guest whose qemu died, or whose domain
# its host lost, is restarted there at most KUMO_GUEST_RESTART_BUDGET times within
# KUMO_GUEST_RESTART_WINDOW seconds; past that it stays SHUTOFF (or ERROR) with a fault.
KUMO_GUEST_RESTART_BUDGET = int(os.environ.get("KUMO_GUEST_RESTART_BUDGET", "3"))
KUMO_GUEST_RESTART_WINDOW = _env_float("KUMO_GUEST_RESTART_WINDOW", 600)
# Host failure (cloud/conductor/host_watch.py, docs/failover.md): a compute host silent for
# KUMO_HOST_FAILURE_AFTER seconds is fenced by its driver (cloud/compute/fencing.py: manual,
# command, simulated), and once that confirms it is off its HA servers are evacuated,
# KUMO_EVACUATE_CONCURRENCY at a time.
KUMO_HOST_FAILURE_AFTER = _env_float("KUMO_HOST_FAILURE_AFTER", 25)
KUMO_FENCING_DRIVER = os.environ.get("KUMO_FENCING_DRIVER", "manual")
KUMO_FENCING_HOSTS: dict = json.loads(os.environ.get("KUMO_FENCING_HOSTS", "") or "{}")
KUMO_FENCE_COMMAND = os.environ.get("KUMO_FENCE_COMMAND", "")
KUMO_FENCE_VERIFY_COMMAND = os.environ.get("KUMO_FENCE_VERIFY_COMMAND", "")
KUMO_FENCE_TIMEOUT = _env_float("KUMO_FENCE_TIMEOUT", 30)
KUMO_FENCE_ATTEMPTS = int(os.environ.get("KUMO_FENCE_ATTEMPTS", "3"))
KUMO_FENCE_RETRY_INTERVAL = _env_float("KUMO_FENCE_RETRY_INTERVAL", 15)
KUMO_EVACUATE_CONCURRENCY = max(1, int(os.environ.get("KUMO_EVACUATE_CONCURRENCY", "4")))
# How many guests a host drain moves at once (cloud/scheduler/drains.py); Nova's
# max_concurrent_live_migrations is 1 too. Each move copies a whole disk over the hosts' network.
KUMO_DRAIN_CONCURRENCY = max(1, int(os.environ.get("KUMO_DRAIN_CONCURRENCY", "1")))
KUMO_CPU_ALLOCATION_RATIO = _env_float("KUMO_CPU_ALLOCATION_RATIO", 4.0)
KUMO_RAM_ALLOCATION_RATIO = _env_float("KUMO_RAM_ALLOCATION_RATIO", 1.0)
KUMO_DISK_ALLOCATION_RATIO = _env_float("KUMO_DISK_ALLOCATION_RATIO", 1.0)

# Browser consoles (cloud/compute/consoles.py, consoles/). The console URL is
# <KUMO_CONSOLE_BASE_URL or the API's own origin>/console/?token=…; point the base at a standalone
# `python -m consoles.proxy` to serve consoles from another node.
KUMO_CONSOLE_BASE_URL = os.environ.get("KUMO_CONSOLE_BASE_URL", "").rstrip("/")
KUMO_CONSOLE_TOKEN_TTL = int(os.environ.get("KUMO_CONSOLE_TOKEN_TTL", "600"))
KUMO_CONSOLE_MAX_SESSIONS = int(os.environ.get("KUMO_CONSOLE_MAX_SESSIONS", "2"))
# How often an open console session checks that its instance is still there (seconds).
KUMO_CONSOLE_RECHECK_INTERVAL = _env_float("KUMO_CONSOLE_RECHECK_INTERVAL", 3)
# Browser origins allowed to open console websockets besides the page's own origin and the
# origins of KUMO_CONSOLE_BASE_URL and KUMO_PUBLIC_URL (comma-separated, e.g. https://x:443).
KUMO_CONSOLE_ALLOWED_ORIGINS = [
    o.strip().rstrip("/") for o in os.environ.get("KUMO_CONSOLE_ALLOWED_ORIGINS", "").split(",")
    if o.strip()
]

# --- Deployment (README "Production settings"). Unset KUMO_PUBLIC_URL keeps a local first run
# open: any Host, plain HTTP. Set, only the hosts of Kumo's own URLs are served, so a forged Host
# header is refused (400) rather than trusted; an https URL also turns HTTPS on everywhere.
def _hosts(*urls: str) -> list[str]:
    return sorted({urlsplit(url).hostname or "" for url in urls if url} - {""})


if os.environ.get("DJANGO_ALLOWED_HOSTS"):
    ALLOWED_HOSTS = os.environ["DJANGO_ALLOWED_HOSTS"].split(",")
elif KUMO_PUBLIC_URL:
    # The compute hosts come in by KUMO_INTERNAL_URL, and a console proxy may share the origin.
    ALLOWED_HOSTS = _hosts(KUMO_PUBLIC_URL, KUMO_INTERNAL_URL, KUMO_CONSOLE_BASE_URL)
else:
    ALLOWED_HOSTS = ["*"]

if urlsplit(KUMO_PUBLIC_URL).scheme == "https":
    # Behind a proxy that ends TLS, the web process learns the scheme from X-Forwarded-Proto, which
    # uvicorn trusts from FORWARDED_ALLOW_IPS (default: this machine's own proxy).
    SECURE_SSL_REDIRECT = True
    if urlsplit(KUMO_INTERNAL_URL).scheme == "http":
        # Compute hosts move image data over KUMO_INTERNAL_URL, plain HTTP on a private network:
        # those two transfers (download, snapshot upload) are not redirected to the public https.
        SECURE_REDIRECT_EXEMPT = [r"^image/v2/images/[^/]+/file$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("KUMO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Only a header: a domain joins the browsers' preload list when its owner submits it.
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = [KUMO_PUBLIC_URL]

# noVNC as npm installs it (package.json; scripts/setup.sh runs `npm install`).
KUMO_NOVNC_DIR = Path(
    os.environ.get("KUMO_NOVNC_DIR", BASE_DIR / "node_modules" / "@novnc" / "novnc")
)
# Threads per web process that run the (synchronous) Django views behind the ASGI front.
KUMO_WEB_THREADS = int(os.environ.get("KUMO_WEB_THREADS", "8"))

# Quota limits of a project without its own Quota rows (-1 = unlimited); cloud/compute/quotas.py.
KUMO_DEFAULT_QUOTAS = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "key_pairs": 100,
    "server_groups": 10,
    "server_group_members": 10,
    "metadata_items": 128,
}

# Scheduler filters and weighers: one class, one rule; order matters only for the fault text.
KUMO_SCHEDULER_FILTERS = [
    "cloud.scheduler.filters.requested_destination.RequestedDestinationFilter",
    "cloud.scheduler.filters.enabled.ComputeEnabledFilter",
    "cloud.scheduler.filters.alive.ComputeAliveFilter",
    "cloud.scheduler.filters.retry.RetryFilter",
    "cloud.scheduler.filters.availability_zone.AvailabilityZoneFilter",
    "cloud.scheduler.filters.ram.RamFilter",
    "cloud.scheduler.filters.vcpu.VcpuFilter",
    "cloud.scheduler.filters.disk.DiskFilter",
    # Container images (hypervisor_type=lxc) on LXC hosts only, every other image off them (Nova
    # lists it by default too). What it reads comes with the shortlist's rows and the request.
    "cloud.scheduler.filters.image_properties.ImagePropertiesFilter",
    "cloud.scheduler.filters.server_group_affinity.ServerGroupAffinityFilter",
    "cloud.scheduler.filters.server_group_anti_affinity.ServerGroupAntiAffinityFilter",
]
KUMO_SCHEDULER_WEIGHERS = [
    "cloud.scheduler.weighers.ram.FreeRamWeigher",
    "cloud.scheduler.weighers.server_group_soft_affinity.ServerGroupSoftAffinityWeigher",
    "cloud.scheduler.weighers.server_group_soft_anti_affinity.ServerGroupSoftAntiAffinityWeigher",
]

# Hosts that join with a broker credential of their own (docs/adding-a-host.md, cloud/enrollment).
# Seconds a join token from `manage.py host-token` stays valid unless --ttl says otherwise.
KUMO_JOIN_TOKEN_TTL = int(os.environ.get("KUMO_JOIN_TOKEN_TTL", "3600"))
# Who makes the hosts' broker users: auto (by CELERY_BROKER_URL's scheme), rabbitmq, redis, fake.
KUMO_BROKER_CREDENTIALS = os.environ.get("KUMO_BROKER_CREDENTIALS", "auto")
# The broker as hosts reach it, without credentials (default: CELERY_BROKER_URL's address).
KUMO_HOST_BROKER_URL = os.environ.get("KUMO_HOST_BROKER_URL", "")
# A host's broker user is this prefix and its name; the command that manages RabbitMQ's users.
KUMO_BROKER_USER_PREFIX = os.environ.get("KUMO_BROKER_USER_PREFIX", "kumo-host-")
KUMO_RABBITMQCTL = os.environ.get("KUMO_RABBITMQCTL", "rabbitmqctl")
# On: the conductor refuses every report not sent with the credential of the host it names, so
# hosts sharing the control plane's broker user (make run HOSTS=N, the default host) stop counting.
KUMO_REQUIRE_HOST_CREDENTIALS = os.environ.get("KUMO_REQUIRE_HOST_CREDENTIALS", "").lower() in (
    "1", "true", "yes", "on")
# The metadata service (/metadata/, cloud/api/metadata.py): the secret that hosts without a
# credential of their own sign their guests' requests with (the agents get the same value). Unset,
# only joined hosts (their own secret) are answered. Never the same as any other secret.
KUMO_METADATA_SECRET = os.environ.get("KUMO_METADATA_SECRET", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "cloud.logcontext.RequestIdFilter"},
        # Console tokens travel in query strings; no log line may carry one.
        "redact_tokens": {"()": "consoles.redact.RedactTokens"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        # KUMO_LOG_FORMAT=json: one JSON object per line (cloud/logformat.py).
        "json": {"()": "cloud.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id", "redact_tokens"],
            "formatter": "json" if os.environ.get("KUMO_LOG_FORMAT", "").lower() == "json"
            else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("KUMO_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The format inspector logs an ERROR for every format a file is not, e.g. plain raw data.
        "oslo_utils.imageutils.format_inspector": {"level": "CRITICAL"},
    },
}
