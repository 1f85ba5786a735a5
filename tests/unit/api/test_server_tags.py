"""Server tags (2.26): the /servers/{id}/tags routes, tags at create (2.52) and in the body."""

from __future__ import annotations

import pytest

from cloud.compute.models import InstanceTag
from tests.factories import boot, make_server

V = "/compute/v2.1"


@pytest.fixture
def server(member):
    return make_server(member, "tagged")


def _tags(api, server, version="2.26"):
    return api.get(f"{V}/servers/{server.uuid}/tags", version=version)


def test_tags_are_missing_below_2_26(member, api_as, server):
    assert _tags(api_as(member), server, version="2.25").status_code == 404


def test_adding_a_tag_answers_201_then_204_and_it_is_listed_and_checkable(member, api_as, server):
    api = api_as(member)
    added = api.put(f"{V}/servers/{server.uuid}/tags/blue", version="2.26")
    assert added.status_code == 201, added.content
    assert added["Location"].endswith(f"/servers/{server.uuid}/tags/blue")
    assert api.put(f"{V}/servers/{server.uuid}/tags/blue", version="2.26").status_code == 204
    assert _tags(api, server).json() == {"tags": ["blue"]}
    assert api.get(f"{V}/servers/{server.uuid}/tags/blue", version="2.26").status_code == 204
    assert api.get(f"{V}/servers/{server.uuid}/tags/red", version="2.26").status_code == 404
    shown = api.get(f"{V}/servers/{server.uuid}", version="2.26").json()["server"]
    assert shown["tags"] == ["blue"]
    assert "tags" not in api.get(f"{V}/servers/{server.uuid}", version="2.25").json()["server"]


def test_replace_all_and_delete_one_and_all(member, api_as, server):
    api = api_as(member)
    replaced = api.put(f"{V}/servers/{server.uuid}/tags", {"tags": ["b", "a", "a"]},
                       version="2.26")
    assert replaced.status_code == 200
    assert replaced.json() == {"tags": ["a", "b"]}
    assert api.delete(f"{V}/servers/{server.uuid}/tags/a", version="2.26").status_code == 204
    assert api.delete(f"{V}/servers/{server.uuid}/tags/a", version="2.26").status_code == 404
    assert _tags(api, server).json() == {"tags": ["b"]}
    assert api.delete(f"{V}/servers/{server.uuid}/tags", version="2.26").status_code == 204
    assert _tags(api, server).json() == {"tags": []}


@pytest.mark.parametrize("tag", ["a,b", "x" * 61])
def test_a_tag_with_a_comma_or_over_60_characters_is_400(member, api_as, server, tag):
    api = api_as(member)
    assert api.put(f"{V}/servers/{server.uuid}/tags/{tag}", version="2.26").status_code == 400
    assert api.put(f"{V}/servers/{server.uuid}/tags", {"tags": [tag]},
                   version="2.26").status_code == 400
    assert not InstanceTag.objects.exists()


def test_a_server_holds_at_most_50_tags(member, api_as, server):
    api = api_as(member)
    fifty = [f"t{i}" for i in range(50)]
    assert api.put(f"{V}/servers/{server.uuid}/tags", {"tags": fifty},
                   version="2.26").status_code == 200
    assert api.put(f"{V}/servers/{server.uuid}/tags/one-more", version="2.26").status_code == 400
    assert api.put(f"{V}/servers/{server.uuid}/tags", {"tags": [*fifty, "x"]},
                   version="2.26").status_code == 400
    assert InstanceTag.objects.count() == 50


def test_tags_change_only_on_a_settled_server(member, api_as):
    building = make_server(member, "new", vm_state="building", task_state="scheduling")
    response = api_as(member).put(f"{V}/servers/{building.uuid}/tags/blue", version="2.26")
    assert response.status_code == 409
    assert "vm_state building" in response.json()["conflictingRequest"]["message"]


def test_a_reader_lists_but_cannot_tag_and_another_project_sees_nothing(
    member, reader, other, api_as, server
):
    assert _tags(api_as(reader), server).status_code == 200
    assert api_as(reader).put(f"{V}/servers/{server.uuid}/tags/x", version="2.26").status_code == 403
    assert _tags(api_as(other), server).status_code == 404


def test_tags_at_create_from_2_52(member, api_as, tiny, image):
    api = api_as(member)
    refused = boot(api, image, name="early", version="2.51", tags=["web"])
    assert refused.status_code == 400
    made = boot(api, image, name="tagged", version="2.52", tags=["web", "prod"])
    assert made.status_code == 202, made.content
    server_id = made.json()["server"]["id"]
    shown = api.get(f"{V}/servers/{server_id}", version="2.52").json()["server"]
    assert shown["tags"] == ["prod", "web"]
    assert boot(api, image, name="bad", version="2.52", tags=["a/b"]).status_code == 400


@pytest.mark.parametrize("query, expected", [
    ("tags=red,blue", {"both"}),
    ("tags=red", {"both", "red"}),
    ("tags-any=red,green", {"both", "red", "green"}),
    ("not-tags=red,blue", {"red", "green", "none"}),
    ("not-tags-any=red,blue", {"green", "none"}),
    ("tags=red&not-tags-any=blue", {"red"}),
])
def test_tag_filters_combine_as_nova_s(member, api_as, query, expected):
    tagged = {"both": ["red", "blue"], "red": ["red"], "green": ["green"], "none": []}
    for name, tags in tagged.items():
        server = make_server(member, name)
        for tag in tags:
            InstanceTag.objects.create(instance=server, tag=tag)
    listed = api_as(member).get(f"{V}/servers?{query}", version="2.26").json()["servers"]
    assert {s["name"] for s in listed} == expected
    # Below 2.26 the tag filters are unknown, and so ignored.
    everything = api_as(member).get(f"{V}/servers?{query}", version="2.25").json()["servers"]
    assert len(everything) == 4
