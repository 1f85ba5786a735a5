"""A boot reads its flavor and image by key and applies the visibility rule to the row itself
(flavors.usable_flavor, visibility.visible_image) rather than through the rule's SQL. Both must
answer exactly as the SQL rules do (flavors.usable_by, visibility.visible_images) for every kind of
flavor, image, membership and caller."""

from __future__ import annotations

import itertools

import pytest

from cloud.compute import flavors
from cloud.compute.models import Flavor, FlavorAccess
from cloud.identity.context import RequestContext
from cloud.images.models import Image, ImageMember
from cloud.images.visibility import visible_image, visible_images
from tests.factories import owner

pytestmark = pytest.mark.django_db

ME, OTHER = "p-mine", "p-other"


def _ctx(project: str | None, admin: bool = False) -> RequestContext:
    return RequestContext(user_id="u", user_name="u", project_id=project, project_name=project,
                          roles=("admin",) if admin else ("member",))


CALLERS = [_ctx(ME), _ctx(OTHER), _ctx(ME, admin=True), _ctx(None)]


@pytest.fixture
def projects(db):
    from cloud.identity.models import Project

    return {p: Project.objects.create(id=p, name=p) for p in (ME, OTHER)}


def test_an_image_is_visible_by_id_exactly_when_the_sql_rule_says_so(projects):
    owner()
    images = []
    for visibility, owned_by, membership in itertools.product(
            ["public", "community", "shared", "private"], [ME, OTHER, None],
            [None, "pending", "accepted", "rejected"]):
        image = Image.objects.create(name=f"{visibility}-{owned_by}-{membership}",
                                     visibility=visibility, status="active",
                                     owner=projects.get(owned_by) if owned_by else None)
        if membership is not None:
            ImageMember.objects.create(image=image, project=projects[ME], status=membership)
        images.append(image)

    for ctx in CALLERS:
        seen_by_sql = set(visible_images(ctx).values_list("pk", flat=True))
        for image in images:
            found = visible_image(ctx, image.pk)
            assert (found is not None) == (image.pk in seen_by_sql), (ctx.project_id,
                                                                      ctx.is_admin, image.name)
            assert found is None or found.pk == image.pk
    assert visible_image(CALLERS[0], "00000000-0000-0000-0000-000000000000") is None


def test_a_flavor_is_usable_exactly_when_the_sql_rule_says_so(db):
    public = Flavor.objects.create(flavorid="pub", name="pub", vcpus=1, memory_mb=64, root_gb=1)
    private = Flavor.objects.create(flavorid="priv", name="priv", vcpus=1, memory_mb=64,
                                    root_gb=1, is_public=False)
    granted = Flavor.objects.create(flavorid="granted", name="granted", vcpus=1, memory_mb=64,
                                    root_gb=1, is_public=False)
    FlavorAccess.objects.create(flavor=granted, project_id=ME)

    for ctx, flavor in itertools.product([*CALLERS, None], [public, private, granted]):
        by_sql = (Flavor.objects.filter(flavorid=flavor.flavorid) if ctx is None
                  else flavors.usable_by(ctx, Flavor.objects.filter(flavorid=flavor.flavorid)))
        found = flavors.usable_flavor(ctx, flavor.flavorid)
        assert (found is not None) == by_sql.exists(), (ctx and ctx.project_id, flavor.flavorid)
    assert flavors.usable_flavor(CALLERS[0], "no-such") is None
