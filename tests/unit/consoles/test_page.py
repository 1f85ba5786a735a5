"""The console page around noVNC, its status answer, noVNC's files, and the log lines around them."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.utils import timezone

import cloud.asgi  # noqa: F401 - puts the redaction on the ASGI servers' loggers
from cloud.compute import consoles
from cloud.compute.models import ConsoleToken, Instance
from cloud.compute.servers import complete_delete
from consoles import novnc
from consoles.origin import origin_allowed
from consoles.redact import RedactTokens, redact

from .fakes import mint, server_with_console

needs_novnc = pytest.mark.skipif(not novnc.installed(), reason="noVNC is not installed (npm install)")


@pytest.fixture
def server(member):
    return server_with_console(member, port=5901, name="web-01")


def test_the_page_names_the_instance_and_loads_novnc_from_this_origin(member, server):
    token = mint(member, server)
    response = Client().get(f"/console/?token={token}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "web-01" in page
    assert 'data-state="connecting"' in page or not novnc.installed()
    assert "/console/novnc/core/rfb.js" in page
    assert "Ctrl-Alt-Del" in page
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"


def test_opening_the_page_does_not_use_up_the_link(member, server):
    token = mint(member, server)
    Client().get(f"/console/?token={token}")
    Client().get(f"/console/?token={token}")
    assert Client().get(f"/console/status?token={token}").json()["state"] == "ready"


def test_an_expired_link_shows_a_clear_message(member, server):
    token = mint(member, server)
    ConsoleToken.objects.update(expires_at=timezone.now())
    page = Client().get(f"/console/?token={token}").content.decode()
    assert "This console link has expired" in page
    assert 'data-state="refused"' in page
    assert "rfb.js" not in page  # nothing tries to connect


def test_a_deleted_guest_shows_that_it_is_gone(member, server):
    token = mint(member, server)
    complete_delete(str(server.uuid))
    assert "its server was deleted" in Client().get(f"/console/?token={token}").content.decode()


def test_after_a_session_the_status_says_when_the_guest_went_away(member, server):
    token = mint(member, server)
    consoles.consume_token(token)
    assert Client().get(f"/console/status?token={token}").json()["state"] == "used"
    Instance.objects.filter(pk=server.pk).update(task_state="deleting")
    status = Client().get(f"/console/status?token={token}").json()
    assert status["state"] == "gone"
    assert "no longer exists" in status["message"]


def test_a_page_without_a_token_says_the_link_is_not_valid(db):
    assert "not valid" in Client().get("/console/").content.decode()


@needs_novnc
def test_novnc_modules_are_served_as_javascript(db):
    response = Client().get("/console/novnc/core/rfb.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")


@pytest.mark.parametrize("path", [
    "package.json", "README.md", "core/../package.json", "core/../../../../etc/passwd",
    "core/%2e%2e/package.json", "docs/API.md", "core/", "nope.js",
])
def test_nothing_outside_novncs_modules_is_served(db, path):
    assert Client().get(f"/console/novnc/{path}").status_code == 404


def test_tokens_never_reach_a_log_line(caplog):
    handler_filter = RedactTokens()
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                               '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5000", "/console/ws?token=s3cr3t-Value_x&x=1"), None)
    handler_filter.filter(record)
    assert "s3cr3t" not in record.getMessage()
    assert "token=[redacted]&x=1" in record.getMessage()
    assert redact("GET /console/?token=abc HTTP/1.1") == "GET /console/?token=[redacted] HTTP/1.1"
    assert redact("nothing here") == "nothing here"
    assert redact(redact("ws?token=abc def")) == "ws?token=[redacted] def"  # twice is once


def test_the_configured_log_handlers_redact_tokens():
    root_filters = [f for h in logging.getLogger().handlers for f in h.filters]
    assert any(isinstance(f, RedactTokens) for f in root_filters) or not logging.getLogger().handlers


@pytest.mark.parametrize(("origin", "host", "secure", "allowed"), [
    (None, "cloud:8000", False, True),  # not a browser: the token decides
    ("http://cloud:8000", "cloud:8000", False, True),
    ("https://cloud", "cloud", True, True),
    ("http://cloud", "cloud:80", False, True),
    ("http://[::1]:8000", "[::1]:8000", False, True),
    ("https://cloud", "cloud", False, False),  # another scheme is another origin
    ("http://evil.example", "cloud:8000", False, False),
    ("http://cloud:8000.evil.example", "cloud:8000", False, False),
    ("null", "cloud:8000", False, False),
    ("file://", "cloud:8000", False, False),
    ("http://cloud:8000", None, False, False),
])
def test_a_console_websocket_must_come_from_the_page_of_its_own_origin(
    settings, origin, host, secure, allowed
):
    settings.ALLOWED_HOSTS = ["cloud", "[::1]"]
    assert origin_allowed(origin, host, secure=secure) is allowed


def test_hosts_django_does_not_serve_cannot_be_used_as_an_origin(settings):
    settings.ALLOWED_HOSTS = ["cloud"]
    assert not origin_allowed("http://other:8000", "other:8000")


def test_the_public_and_console_base_urls_are_allowed_origins(settings):
    settings.ALLOWED_HOSTS = ["cloud"]
    settings.KUMO_PUBLIC_URL = "https://portal.example"
    settings.KUMO_CONSOLE_BASE_URL = "http://proxy.example:6080"
    assert origin_allowed("https://portal.example", "cloud:8000")
    assert origin_allowed("http://proxy.example:6080", "proxy.example:6080")
    assert not origin_allowed("http://portal.example", "cloud:8000")


def test_an_asgi_server_logging_a_websocket_path_logs_no_token(caplog):
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logging.getLogger("uvicorn.error").info(
            '%s - "WebSocket %s" [accepted]', "127.0.0.1:1", "/console/ws?token=abcdef0123456789")
    assert "WebSocket /console/ws?token=[redacted]" in caplog.text
    assert "abcdef0123456789" not in caplog.text
