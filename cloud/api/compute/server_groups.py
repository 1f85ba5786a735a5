"""/os-server-groups: list, create, show, delete.

Shapes by microversion: 2.1 `policies` (a one-item list) and an empty `metadata`; 2.13 adds
`project_id` and `user_id`; 2.15 allows the soft policies; 2.64 replaces `policies`/`metadata` with
`policy` and `rules` (above our maximum today, kept so raising the maximum is one line).
"""

from __future__ import annotations

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from cloud.compute import server_groups
from cloud.compute.models import ServerGroup
from cloud.identity import policy
from cloud.validation import name_schema

from ..base import ComputeView, Versioned
from ..microversion import APIVersion
from . import params

_HARD = [server_groups.AFFINITY, server_groups.ANTI_AFFINITY]
_ALL = list(server_groups.POLICIES)


def _create_schema_before_264(policies: list[str]) -> dict:
    return {
        "type": "object",
        "required": ["server_group"],
        "properties": {
            "server_group": {
                "type": "object",
                "required": ["name", "policies"],
                "properties": {
                    "name": name_schema(),
                    "policies": {
                        "type": "array",
                        "items": {"type": "string", "enum": policies},
                        "minItems": 1,
                        "maxItems": 1,
                    },
                },
                "additionalProperties": False,
            }
        },
        "additionalProperties": False,
    }


_CREATE_21 = _create_schema_before_264(_HARD)
_CREATE_215 = _create_schema_before_264(_ALL)
_CREATE_264 = {
    "type": "object",
    "required": ["server_group"],
    "properties": {
        "server_group": {
            "type": "object",
            "required": ["name", "policy"],
            "properties": {
                "name": name_schema(),
                "policy": {"type": "string", "enum": _ALL},
                "rules": {
                    "type": "object",
                    "properties": {
                        "max_server_per_host": {
                            "type": ["integer", "string"],
                            "pattern": "^[1-9][0-9]*$",
                            "minimum": 1,
                        }
                    },
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}


def group_body(group: ServerGroup, members: list[str], version: APIVersion) -> dict:
    body = {"id": str(group.uuid), "name": group.name}
    if version.at_least("2.64"):
        body.update({"policy": group.policy, "rules": dict(group.rules or {})})
    else:
        body.update({"policies": [group.policy], "metadata": {}})
    body["members"] = members
    if version.at_least("2.13"):
        body.update({"project_id": group.project_id, "user_id": group.user_id})
    return body


class ServerGroupList(ComputeView):
    body_schemas = {"POST": Versioned(("2.1", _CREATE_21), ("2.15", _CREATE_215), ("2.64", _CREATE_264))}
    query_params = {"GET": ("all_projects", "limit", "offset")}

    def get(self, request: Request) -> Response:
        self.authorize("compute:server_groups:index")
        query = request.query_params
        # Nova ignores all_projects from someone not allowed it rather than refusing the listing.
        all_projects = params.bool_param(query, "all_projects") and policy.allowed(
            self.ctx, "compute:server_groups:index:all_projects"
        )
        groups = server_groups.list_groups(
            self.ctx,
            all_projects=all_projects,
            limit=params.limit_param(query),
            offset=params.count_param(query, "offset") or 0,
        )
        members = server_groups.members_of(groups)
        return Response(
            {"server_groups": [group_body(g, members[str(g.uuid)], self.version) for g in groups]}
        )

    def post(self, request: Request) -> Response:
        self.authorize("compute:server_groups:create")
        spec = self.valid_body("server_group")
        if self.version.at_least("2.64"):
            chosen = spec["policy"]
            rules = {k: int(v) for k, v in (spec.get("rules") or {}).items()}
        else:
            chosen, rules = spec["policies"][0], {}
        group = server_groups.create_group(self.ctx, spec["name"], chosen, rules)
        return Response({"server_group": group_body(group, [], self.version)})


class ServerGroupItem(ComputeView):
    def get(self, request: Request, group_id: str) -> Response:
        # Another project's group is missing whatever the caller's role, as a server is.
        group = server_groups.get_group(self.ctx, group_id)
        self.authorize("compute:server_groups:show")
        members = server_groups.members_of([group])[str(group.uuid)]
        return Response({"server_group": group_body(group, members, self.version)})

    def delete(self, request: Request, group_id: str) -> Response:
        group = server_groups.get_group(self.ctx, group_id)
        self.authorize("compute:server_groups:delete")
        server_groups.delete_group(self.ctx, group)
        return Response(status=204)


urlpatterns = [
    path("/os-server-groups", ServerGroupList.as_view()),
    path("/os-server-groups/<str:group_id>", ServerGroupItem.as_view()),
]
