"""os-simple-tenant-usage: hours and totals from the servers' own lifetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import make_server

V = "/compute/v2.1"
START = datetime(2026, 1, 1, tzinfo=UTC)
FMT = "%Y-%m-%dT%H:%M:%S"


@pytest.fixture
def servers(member, other):
    # 10 hours in the period, terminated; 24 hours, still running; launched after the period.
    done = make_server(member, "done", launched_at=START + timedelta(hours=2),
                       terminated_at=START + timedelta(hours=12), deleted=True,
                       vm_state="deleted", vcpus=2, memory_mb=512, root_gb=10)
    running = make_server(member, "running", launched_at=START - timedelta(days=1))
    make_server(member, "later", launched_at=START + timedelta(days=5))
    make_server(other, "theirs", launched_at=START)
    return done, running


def _period(hours=24):
    return f"start={START.strftime(FMT)}&end={(START + timedelta(hours=hours)).strftime(FMT)}"


def test_a_project_s_usage_counts_each_server_s_hours_in_the_period(member, api_as, servers):
    response = api_as(member).get(f"{V}/os-simple-tenant-usage/{member.project.pk}?{_period()}")
    assert response.status_code == 200, response.content
    usage = response.json()["tenant_usage"]
    hours = {s["name"]: s["hours"] for s in usage["server_usages"]}
    assert hours == {"done": pytest.approx(10.0), "running": pytest.approx(24.0)}
    assert usage["total_hours"] == pytest.approx(34.0)
    assert usage["total_vcpus_usage"] == pytest.approx(2 * 10 + 1 * 24)
    assert usage["total_memory_mb_usage"] == pytest.approx(512 * 10 + 128 * 24)
    assert usage["total_local_gb_usage"] == pytest.approx(10 * 10 + 1 * 24)
    done = next(s for s in usage["server_usages"] if s["name"] == "done")
    assert (done["state"], done["uptime"], done["flavor"]) == ("terminated", 36000, "m1.tiny")
    assert usage["start"] == "2026-01-01T00:00:00.000000"
    assert len(usage) == 8


def test_all_projects_for_admins_with_details_on_request(admin, member, other, api_as, servers):
    api = api_as(admin)
    summary = api.get(f"{V}/os-simple-tenant-usage?{_period()}").json()["tenant_usages"]
    assert {u["tenant_id"] for u in summary} == {member.project.pk, other.project.pk}
    assert all("server_usages" not in u for u in summary)
    detailed = api.get(f"{V}/os-simple-tenant-usage?{_period()}&detailed=1").json()
    assert all(len(u) == 8 for u in detailed["tenant_usages"])
    assert api_as(member).get(f"{V}/os-simple-tenant-usage?{_period()}").status_code == 403


def test_another_project_s_usage_is_for_admins_only(member, other, api_as, servers):
    url = f"{V}/os-simple-tenant-usage/{member.project.pk}?{_period()}"
    assert api_as(other).get(url).status_code == 403


def test_a_period_that_ends_before_it_starts_is_400(member, api_as):
    url = (f"{V}/os-simple-tenant-usage/{member.project.pk}?start=2026-01-02T00:00:00"
           f"&end=2026-01-01T00:00:00")
    assert api_as(member).get(url).status_code == 400
    bad = f"{V}/os-simple-tenant-usage/{member.project.pk}?start=yesterday"
    assert api_as(member).get(bad).status_code == 400


def test_from_2_40_server_usages_are_paged(member, api_as, servers):
    api = api_as(member)
    url = f"{V}/os-simple-tenant-usage/{member.project.pk}?{_period()}&limit=1"
    page = api.get(url, version="2.40").json()
    assert len(page["tenant_usage"]["server_usages"]) == 1
    assert "marker=" in page["tenant_usage_links"][0]["href"]
    unpaged = api.get(url, version="2.39").json()
    assert len(unpaged["tenant_usage"]["server_usages"]) == 2
    assert "tenant_usage_links" not in unpaged


def test_a_negative_limit_is_refused_at_every_version(member, api_as, servers):
    api = api_as(member)
    url = f"{V}/os-simple-tenant-usage/{member.project.pk}?{_period()}&limit=-1"
    for version in ("2.1", "2.39", "2.40"):
        response = api.get(url, version=version)
        assert response.status_code == 400, (version, response.content)
        assert "badRequest" in response.json()
