"""Private flavors and who may use them: os-flavor-access, addTenantAccess/removeTenantAccess, and
what a project without access sees and boots."""

from __future__ import annotations

import pytest

from cloud.compute.models import Flavor, FlavorAccess, Instance
from tests.factories import boot

V = "/compute/v2.1"


@pytest.fixture
def private(db):
    return Flavor.objects.create(flavorid="p1", name="private.one", vcpus=1, memory_mb=128,
                                 root_gb=1, is_public=False)


def _grant(api, flavor_id, project_id, version=None, action="addTenantAccess"):
    return api.post(f"{V}/flavors/{flavor_id}/action", {action: {"tenant": project_id}},
                    version=version)


def test_an_admin_grants_and_revokes_access_and_lists_it(admin, member, api_as, private):
    api = api_as(admin)
    granted = _grant(api, "p1", member.project.pk)
    assert granted.status_code == 200, granted.content
    expected = {"flavor_access": [{"flavor_id": "p1", "tenant_id": member.project.pk}]}
    assert granted.json() == expected
    assert api.get(f"{V}/flavors/p1/os-flavor-access").json() == expected
    assert _grant(api, "p1", member.project.pk).status_code == 409  # already there
    revoked = _grant(api, "p1", member.project.pk, action="removeTenantAccess")
    assert revoked.json() == {"flavor_access": []}
    gone = _grant(api, "p1", member.project.pk, action="removeTenantAccess")
    assert gone.status_code == 404


def test_a_public_flavor_has_no_access_list_and_takes_none_from_2_7(admin, api_as, tiny):
    api = api_as(admin)
    assert api.get(f"{V}/flavors/1/os-flavor-access").status_code == 404
    assert _grant(api, "1", "someone", version="2.7").status_code == 409
    assert _grant(api, "1", "someone", version="2.6").status_code == 200


def test_members_may_not_manage_access(member, api_as, private):
    assert _grant(api_as(member), "p1", member.project.pk).status_code == 403
    assert api_as(member).get(f"{V}/flavors/p1/os-flavor-access").status_code == 403
    assert not FlavorAccess.objects.exists()


def test_a_private_flavor_is_seen_and_booted_only_with_access(admin, member, other, api_as,
                                                              private, image):
    api = api_as(member)

    def listed(persona):
        return {f["id"] for f in api_as(persona).get(f"{V}/flavors").json()["flavors"]}

    assert "p1" not in listed(member)
    assert api.get(f"{V}/flavors/p1").status_code == 404
    assert boot(api, image, flavor="p1").status_code == 400
    _grant(api_as(admin), "p1", member.project.pk)
    assert "p1" in listed(member)
    assert api.get(f"{V}/flavors/p1").status_code == 200
    made = boot(api, image, flavor="p1")
    assert made.status_code == 202, made.content
    assert Instance.objects.get(pk=made.json()["server"]["id"]).flavor == private
    # another project still has no access
    assert "p1" not in listed(other)
    assert api_as(other).get(f"{V}/flavors/p1").status_code == 404
    # admins see it with is_public=false or None
    admin_view = api_as(admin).get(f"{V}/flavors?is_public=false").json()["flavors"]
    assert [f["id"] for f in admin_view] == ["p1"]
