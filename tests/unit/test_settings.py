"""Deployment settings (issue 11, point 7): KUMO_PUBLIC_URL decides ALLOWED_HOSTS and, when it is
https, HSTS, the SSL redirect and secure cookies; `manage.py check --deploy` is clean with the
production settings the README documents. Each case imports the settings in a fresh process, with
exactly the environment it names, as a deployment would."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# README, "Production settings": what an operator sets (besides the database and Redis).
PRODUCTION = {
    "KUMO_PUBLIC_URL": "https://cloud.example.com",
    "KUMO_INTERNAL_URL": "http://10.0.0.2:8000",
    "DJANGO_SECRET_KEY": "",  # filled per test: a long random one
}


def _environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KUMO_", "DJANGO_")) and k != "SECURE_HSTS_SECONDS"}
    env.update({"DJANGO_SETTINGS_MODULE": "cloud.settings", "KUMO_VAR_DIR": str(tmp_path)})
    env.update(overrides)
    return env


def _settings(tmp_path: Path, **env: str) -> dict:
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            "print(json.dumps({k: getattr(s, k, None) for k in ('ALLOWED_HOSTS', "
            "'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SESSION_COOKIE_SECURE', "
            "'CSRF_COOKIE_SECURE', 'SECURE_REDIRECT_EXEMPT', 'CSRF_TRUSTED_ORIGINS')}))")
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT,
                          env=_environment(tmp_path, **env), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        check=False, cwd=ROOT, env=_environment(tmp_path, **env), capture_output=True, text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    done = _check_deploy(tmp_path, **{**PRODUCTION, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNINGS" not in done.stdout + done.stderr


def test_check_deploy_warns_without_a_public_https_url(tmp_path):
    done = _check_deploy(tmp_path, DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr


def test_an_https_public_url_turns_https_on_and_names_the_allowed_hosts(tmp_path):
    found = _settings(tmp_path, **PRODUCTION)
    assert found["ALLOWED_HOSTS"] == ["10.0.0.2", "cloud.example.com"]
    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SECURE_HSTS_SECONDS"] == 365 * 24 * 3600
    assert found["SESSION_COOKIE_SECURE"] is True and found["CSRF_COOKIE_SECURE"] is True
    assert found["CSRF_TRUSTED_ORIGINS"] == ["https://cloud.example.com"]
    # Compute hosts fetch and upload image data over the plain-HTTP internal URL.
    assert found["SECURE_REDIRECT_EXEMPT"] == [r"^image/v2/images/[^/]+/file$"]


def test_an_http_public_url_still_refuses_other_hosts_but_keeps_plain_http(tmp_path):
    found = _settings(tmp_path, KUMO_PUBLIC_URL="http://cloud.lan:8000")
    assert found["ALLOWED_HOSTS"] == ["127.0.0.1", "cloud.lan"]
    assert found["SECURE_SSL_REDIRECT"] is False and found["SESSION_COOKIE_SECURE"] is False


@pytest.mark.parametrize("env, hosts", [
    ({}, ["*"]),  # a local first run answers whatever it is called
    ({"KUMO_PUBLIC_URL": "https://cloud.example.com", "DJANGO_ALLOWED_HOSTS": "a.example,b.example"},
     ["a.example", "b.example"]),
])
def test_without_a_public_url_any_host_is_served_and_an_explicit_list_wins(tmp_path, env, hosts):
    assert _settings(tmp_path, **env)["ALLOWED_HOSTS"] == hosts
